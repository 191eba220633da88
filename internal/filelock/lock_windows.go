//go:build windows

package filelock

import (
	"os"

	"golang.org/x/sys/windows"
)

// lockOpenFlags: Windows has no O_NOFOLLOW; the lock file is checked to be
// a regular file after it is opened.
const lockOpenFlags = 0

// lockFile takes an exclusive LockFileEx lock on the first byte of f,
// waiting for it. The lock belongs to the handle, so two opens of the lock
// file exclude each other even within one process.
func lockFile(f *os.File) error {
	return windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK, 0, 1, 0, new(windows.Overlapped))
}

func unlockFile(f *os.File) error {
	return windows.UnlockFileEx(windows.Handle(f.Fd()), 0, 1, 0, new(windows.Overlapped))
}
