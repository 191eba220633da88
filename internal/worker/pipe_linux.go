package worker

import (
	"os"

	"golang.org/x/sys/unix"
)

// growPipe asks the kernel for a pipe buffer of at least n bytes (up to
// what an unprivileged process may have, /proc/sys/fs/pipe-max-size, 1 MiB
// by default) on the pipe f writes to, so that a large frame crosses in
// one or two writes rather than 64 KiB at a time, each waiting for the
// reader to be scheduled. Best effort: a failure leaves the pipe as it was.
func growPipe(f *os.File, n int) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		if cur, err := unix.FcntlInt(fd, unix.F_GETPIPE_SZ, 0); err != nil || cur >= n {
			return
		}
		if _, err := unix.FcntlInt(fd, unix.F_SETPIPE_SZ, n); err != nil && n > 1<<20 {
			unix.FcntlInt(fd, unix.F_SETPIPE_SZ, 1<<20)
		}
	})
}
