//go:build !(darwin || dragonfly || freebsd || linux || netbsd || openbsd || solaris || windows)

package trust

import (
	"os"
	"runtime"

	"github.com/skillbox-dev/skillbox/errdefs"
)

const lockOpenFlags = 0

// lockFile has no implementation here (golang.org/x/sys offers no flock on
// this platform), so Update refuses to change the store rather than risk a
// lost update: an untrust silently undone by a concurrent trust would leave
// a skill trusted. Reading the store (the trust gate) still works.
func lockFile(*os.File) error {
	return errdefs.New(errdefs.Unsupported, "locking the trust store is not implemented on %s/%s, so skillbox does not change it here", runtime.GOOS, runtime.GOARCH)
}

func unlockFile(*os.File) error { return nil }
