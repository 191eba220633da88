//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd || solaris

package filelock

import (
	"errors"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// lockOpenFlags refuses a lock file that is a symbolic link.
const lockOpenFlags = syscall.O_NOFOLLOW

// lockFileMode takes flock on f: LOCK_SH when shared, else LOCK_EX;
// waiting for it unless try (then errBusy when it is held). flock locks
// belong to the open file description, so two opens of the lock file
// exclude each other even within one process.
func lockFileMode(f *os.File, shared, try bool) error {
	how := unix.LOCK_EX
	if shared {
		how = unix.LOCK_SH
	}
	if try {
		how |= unix.LOCK_NB
	}
	for {
		err := unix.Flock(int(f.Fd()), how)
		if try && errors.Is(err, unix.EWOULDBLOCK) {
			return errBusy
		}
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

func unlockFile(f *os.File) error { return unix.Flock(int(f.Fd()), unix.LOCK_UN) }
