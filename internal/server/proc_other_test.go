//go:build !unix

package server_test

import "testing"

// waitGone needs to probe a process with signal 0, which only unix has.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	t.Skipf("cannot check that process %d was killed without unix signals", pid)
}

// running needs to probe a process with signal 0, which only unix has.
func running(t *testing.T, pid int) bool {
	t.Helper()
	t.Skipf("cannot check whether process %d runs without unix signals", pid)
	return false
}
