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

// lockFile takes flock(LOCK_EX) on f, waiting for it. flock locks belong to
// the open file description, so two opens of the lock file exclude each
// other even within one process.
func lockFile(f *os.File) error {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

func unlockFile(f *os.File) error { return unix.Flock(int(f.Fd()), unix.LOCK_UN) }
