//go:build unix

package server_test

import (
	"errors"
	"syscall"
	"testing"
	"time"
)

// waitGone waits for pid to disappear: the cancelled call's sandbox was
// killed.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("process %d still runs after the call was cancelled", pid)
}

// running reports whether pid is still there (a zombie not yet reaped
// counts: its sandbox was not waited for).
func running(t *testing.T, pid int) bool {
	return !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
