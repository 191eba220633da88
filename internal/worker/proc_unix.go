//go:build unix

package worker

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ownGroup makes the worker the leader of a new process group, so Kill
// reaches what it starts.
func ownGroup(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
}

// killGroup sends SIGKILL to process group pid.
func killGroup(pid int) {
	if pid > 0 {
		syscall.Kill(-pid, syscall.SIGKILL)
	}
}

func signalName(sig int) string { return unix.SignalName(syscall.Signal(sig)) }

// Usage returns a finished worker's peak RSS in bytes and its CPU time.
func Usage(state *os.ProcessState) (maxRSS int64, cpu time.Duration) {
	if ru, ok := state.SysUsage().(*syscall.Rusage); ok {
		return maxRSSBytes(ru.Maxrss), time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return 0, 0
}

// maxRSSBytes converts ru_maxrss: kilobytes on Linux and the BSDs, bytes on
// Darwin.
func maxRSSBytes(v int64) int64 {
	if runtime.GOOS == "darwin" {
		return v
	}
	return v * 1024
}

// fileID is the device and inode of fi, for keys that must change when the
// file is replaced.
func fileID(fi os.FileInfo) string {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
	}
	return ""
}
