package skillbox

import (
	"errors"
	"sync"

	"golang.org/x/sys/unix"
)

// inotifyMask is every change of a folder's entries or of the folder.
const inotifyMask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MODIFY | unix.IN_ATTRIB |
	unix.IN_MOVED_FROM | unix.IN_MOVED_TO | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF |
	unix.IN_CLOSE_WRITE | unix.IN_ONLYDIR

// maxWatches bounds the folders one Runtime watches; past it, caching
// stops (calls resolve every time) rather than hold more of the user's
// inotify watches.
const maxWatches = 8192

// inotify is a notifier over one inotify instance, read without blocking.
// Calls resolving different skills watch at once: mu guards it all.
type inotify struct {
	mu      sync.Mutex
	fd      int // -1 once closed
	watches map[string]bool
	buf     [4096]byte
}

func newNotifier() (notifier, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, err
	}
	return &inotify{fd: fd, watches: map[string]bool{}}, nil
}

func (n *inotify) watch(dir string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fd < 0 {
		return errors.New("notifier closed")
	}
	if n.watches[dir] {
		return nil
	}
	if len(n.watches) >= maxWatches {
		return errors.New("too many folders to watch")
	}
	_, err := unix.InotifyAddWatch(n.fd, dir, inotifyMask)
	switch {
	case err == nil:
		n.watches[dir] = true
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTDIR), errors.Is(err, unix.EACCES):
		// Not a folder (yet): whoever creates it changes a watched parent.
		return nil
	default:
		return err
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
			continue
		}
		if err == unix.EINTR {
			continue
		}
		return any
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
