// Package filelock serialises read-modify-write updates of skillbox's
// files (today the trust store) across processes with an advisory
// lock on a sibling file: flock on Unix, LockFileEx on Windows.
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
	fail := func(err error) error {
		return errdefs.Wrap(errdefs.Internal, err, fmt.Sprintf("lock %s (lock file %s)", what, lockPath))
	}
	if err := os.MkdirAll(filepath.Dir(lockPath), 0o700); err != nil {
		return nil, fail(err)
	}
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE|lockOpenFlags, 0o600)
	if err != nil {
		if fi, lerr := os.Lstat(lockPath); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return nil, errdefs.New(errdefs.Invalid, "%s lock file %s is a symbolic link; remove it", what, lockPath)
		}
		return nil, fail(err)
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		if err == nil {
			return nil, errdefs.New(errdefs.Invalid, "%s lock file %s is not a regular file; remove it", what, lockPath)
		}
		return nil, fail(err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		var known *errdefs.Error // already says what is wrong (unsupported platform)
		if errors.As(err, &known) {
			return nil, err
		}
		return nil, fail(err)
	}
	return func() {
		_ = unlockFile(f)
		f.Close() // closing also releases the lock
	}, nil
}
