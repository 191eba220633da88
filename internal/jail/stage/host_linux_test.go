package stage

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestHostGone: the init stage sees its host's end of the config socket
// open while the host lives and closed once it died (the check that
// covers a host killed before the parent-death signal was set again).
func TestHostGone(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[1])
	if gone, err := hostGone(fds[1]); err != nil || gone {
		t.Fatalf("host end open: gone = %v, %v; want false", gone, err)
	}
	unix.Close(fds[0])
	if gone, err := hostGone(fds[1]); err != nil || !gone {
		t.Fatalf("host end closed: gone = %v, %v; want true", gone, err)
	}
}
