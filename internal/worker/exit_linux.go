package worker

import (
	"errors"

	"golang.org/x/sys/unix"
)

// waitExit waits until process pid has exited without reaping it (waitid
// with WNOWAIT), so that its pid stays reserved, and reports whether it
// could.
func waitExit(pid int) bool {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			return err == nil
		}
	}
}
