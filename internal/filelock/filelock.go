// Package filelock serialises read-modify-write updates of skillbox's
// files (the trust store, the caches of environments and images) across
// processes with an advisory lock on a sibling file: flock on Unix,
// LockFileEx on Windows. Shared locks and TryLock let readers mark a thing
// in use (an image a jail runs on) and a cleaner skip it.
package filelock

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/skillbox-dev/skillbox/errdefs"
)

// Lock takes an exclusive advisory lock on the file lockPath (created 0600,
// with its folder 0700, if missing; refused if it is a symbolic link or not
// a regular file), waiting for it, and returns the function that releases
// it. what names the file the lock guards, for messages. Locks exclude each
// other across processes and within one (they belong to the open file).
func Lock(lockPath, what string) (func(), error) {
	release, _, err := take(lockPath, what, false, false)
	return release, err
}

// Shared takes a shared advisory lock on lockPath, waiting for it: any
// number of holders share it, and it excludes Lock and TryLock. The file
// is made and checked as by Lock.
func Shared(lockPath, what string) (func(), error) {
	release, _, err := take(lockPath, what, true, false)
	return release, err
}

// TryLock takes an exclusive advisory lock on lockPath without waiting.
// ok is false (and err nil) when another holder, exclusive or shared, has
// it. The file is made and checked as by Lock.
func TryLock(lockPath, what string) (release func(), ok bool, err error) {
	return take(lockPath, what, false, true)
}

// take opens lockPath and locks it: shared or exclusive, waiting or not.
func take(lockPath, what string, shared, try bool) (func(), bool, error) {
	fail := func(err error) error {
		return errdefs.Wrap(errdefs.Internal, err, fmt.Sprintf("lock %s (lock file %s)", what, lockPath))
	}
	if err := os.MkdirAll(filepath.Dir(lockPath), 0o700); err != nil {
		return nil, false, fail(err)
	}
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE|lockOpenFlags, 0o600)
	if err != nil {
		if fi, lerr := os.Lstat(lockPath); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return nil, false, errdefs.New(errdefs.Invalid, "%s lock file %s is a symbolic link; remove it", what, lockPath)
		}
		return nil, false, fail(err)
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		if err == nil {
			return nil, false, errdefs.New(errdefs.Invalid, "%s lock file %s is not a regular file; remove it", what, lockPath)
		}
		return nil, false, fail(err)
	}
	if err := lockFileMode(f, shared, try); err != nil {
		f.Close()
		if try && errors.Is(err, errBusy) {
			return nil, false, nil
		}
		var known *errdefs.Error // already says what is wrong (unsupported platform)
		if errors.As(err, &known) {
			return nil, false, err
		}
		return nil, false, fail(err)
	}
	return func() {
		_ = unlockFile(f)
		f.Close() // closing also releases the lock
	}, true, nil
}

// errBusy is what lockFileMode returns when try is set and the lock is held.
var errBusy = errors.New("lock held")
