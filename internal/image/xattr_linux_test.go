package image

import (
	"errors"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

func hostArch() string { return runtime.GOARCH }

// checkNoXattrs fails if p carries a file capability.
func checkNoXattrs(t *testing.T, p string) {
	t.Helper()
	_, err := unix.Lgetxattr(p, "security.capability", make([]byte, 64))
	if !errors.Is(err, unix.ENODATA) {
		t.Fatalf("%s: security.capability present or unreadable: %v", p, err)
	}
}
