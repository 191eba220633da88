//go:build !(darwin || dragonfly || freebsd || linux || netbsd || openbsd || solaris || windows)

package filelock

import (
	"os"
	"runtime"

	"github.com/skillbox-dev/skillbox/errdefs"
)

const lockOpenFlags = 0

// lockFileMode has no implementation here (golang.org/x/sys offers no flock on
// this platform), so Lock refuses, and skillbox changes no file rather than risk a
// lost update (an untrust silently undone by a concurrent trust would leave
// a skill trusted). Reading those files still works.
func lockFileMode(*os.File, bool, bool) error {
	return errdefs.New(errdefs.Unsupported, "file locking is not implemented on %s/%s, so skillbox does not change its files here", runtime.GOOS, runtime.GOARCH)
}

func unlockFile(*os.File) error { return nil }
