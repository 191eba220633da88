package skillbox

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// inotifyMask is every change of a folder's entries or of the folder.
const inotifyMask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MODIFY | unix.IN_ATTRIB |
	unix.IN_MOVED_FROM | unix.IN_MOVED_TO | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF |
	unix.IN_CLOSE_WRITE | unix.IN_ONLYDIR

// linkMask is an entry of a folder added, removed or renamed, and the
// folder removed or moved: a folder holding a link on a resolution's way
// may be a busy one ($HOME, say) whose files' writes do not matter.
const linkMask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO |
	unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_ONLYDIR

// inotify is a notifier over one inotify instance, read without blocking.
// Calls resolving different skills watch at once: mu guards it all.
type inotify struct {
	mu  sync.Mutex
	fd  int // -1 once closed
	wds map[int32]bool
	max int // watches it may hold
	buf [4096]byte
}

func newNotifier(max int) (notifier, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, err
	}
	return &inotify{fd: fd, wds: map[int32]bool{}, max: max}, nil
}

func (n *inotify) watch(dir string) error      { return n.add(dir, inotifyMask) }
func (n *inotify) watchLinks(dir string) error { return n.add(dir, linkMask) }

// add watches dir for mask, on top of what its folder is watched for
// already. The kernel is asked each time, not a list of paths: the folder
// at dir may not be the one watched under that path before (made anew,
// or moved there); asking again for the same folder returns its watch.
func (n *inotify) add(dir string, mask uint32) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fd < 0 {
		return errors.New("notifier closed")
	}
	wd, err := unix.InotifyAddWatch(n.fd, dir, mask|unix.IN_MASK_ADD)
	switch {
	case err == nil:
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTDIR):
		// Not a folder (yet): whoever creates it changes a watched parent.
		return nil
	case errors.Is(err, unix.EACCES):
		return fmt.Errorf("%w %s: %v", errUnwatchable, dir, err)
	case errors.Is(err, unix.ENOSPC):
		return fmt.Errorf("%w: %s: %v", errWatchLimit, dir, err)
	default:
		return err
	}
	if !n.wds[int32(wd)] {
		if len(n.wds) >= n.max {
			unix.InotifyRmWatch(n.fd, uint32(wd))
			return errWatchLimit
		}
		n.wds[int32(wd)] = true
	}
	return nil
}

// changed drains the queued events. Any event, an overflow included,
// counts: the cache is dropped whole.
func (n *inotify) changed() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fd < 0 {
		return false
	}
	any := false
	for {
		k, err := unix.Read(n.fd, n.buf[:])
		if k > 0 {
			any = true
			n.forget(n.buf[:k])
			continue
		}
		if err == unix.EINTR {
			continue
		}
		return any
	}
}

// forget drops from the count the watches the kernel removed (IN_IGNORED:
// the folder was deleted, or its file system unmounted); n.mu is held.
func (n *inotify) forget(b []byte) {
	for len(b) >= unix.SizeofInotifyEvent {
		wd := int32(binary.NativeEndian.Uint32(b[0:]))
		mask := binary.NativeEndian.Uint32(b[4:])
		size := unix.SizeofInotifyEvent + int(binary.NativeEndian.Uint32(b[12:]))
		if mask&unix.IN_IGNORED != 0 {
			delete(n.wds, wd)
		}
		if size > len(b) {
			return
		}
		b = b[size:]
	}
}

func (n *inotify) close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fd >= 0 {
		unix.Close(n.fd)
		n.fd = -1
	}
}
