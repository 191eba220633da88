//go:build !unix

package worker

import (
	"os"
	"os/exec"
	"time"
)

// ownGroup does nothing: process groups are a unix notion.
func ownGroup(*exec.Cmd) {}

// killGroup does nothing; Kill still kills the worker itself.
func killGroup(int) {}

func signalName(int) string { return "" }

// Usage returns a finished worker's CPU time (peak RSS is not known here).
func Usage(state *os.ProcessState) (maxRSS int64, cpu time.Duration) {
	return 0, state.UserTime() + state.SystemTime()
}

// fileID is empty: the key falls back to size and modification time.
func fileID(os.FileInfo) string { return "" }
