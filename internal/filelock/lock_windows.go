//go:build windows

package filelock

import (
	"errors"
	"os"

	"golang.org/x/sys/windows"
)

// lockOpenFlags: Windows has no O_NOFOLLOW; the lock file is checked to be
// a regular file after it is opened.
const lockOpenFlags = 0

// lockFileMode takes a LockFileEx lock on the first byte of f: shared or
// exclusive, waiting for it unless try (then errBusy when it is held). The
// lock belongs to the handle, so two opens of the lock file exclude each
// other even within one process.
func lockFileMode(f *os.File, shared, try bool) error {
	var flags uint32
	if !shared {
		flags |= windows.LOCKFILE_EXCLUSIVE_LOCK
	}
	if try {
		flags |= windows.LOCKFILE_FAIL_IMMEDIATELY
	}
	err := windows.LockFileEx(windows.Handle(f.Fd()), flags, 0, 1, 0, new(windows.Overlapped))
	if try && errors.Is(err, windows.ERROR_LOCK_VIOLATION) {
		return errBusy
	}
	return err
}

func unlockFile(f *os.File) error {
	return windows.UnlockFileEx(windows.Handle(f.Fd()), 0, 1, 0, new(windows.Overlapped))
}
