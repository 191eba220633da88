//go:build linux

package worker

import (
	"io"
	"os"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// outPipe copies a captured stdout or stderr pipe into its Capture and can
// tell whether it has copied everything written to the pipe so far.
type outPipe struct {
	f  *os.File
	rc syscall.RawConn
	// busy is set before each read and cleared once what it read is in the
	// Capture: with the pipe's byte count (FIONREAD, TIOCINQ here) it makes caughtUp
	// exact.
	busy atomic.Bool
}

func newOutPipe(f *os.File) *outPipe {
	o := &outPipe{f: f}
	o.rc, _ = f.SyscallConn() // an *os.File from os.Pipe always has one
	return o
}

// copyTo copies the pipe into w until EOF or until the pipe is closed.
func (o *outPipe) copyTo(w io.Writer) {
	if o.rc == nil {
		io.Copy(w, o.f)
		return
	}
	buf := make([]byte, 32<<10)
	for {
		var n int
		var rerr error
		err := o.rc.Read(func(fd uintptr) bool {
			o.busy.Store(true)
			for {
				n, rerr = unix.Read(int(fd), buf)
				if rerr != unix.EINTR {
					break
				}
			}
			if rerr == unix.EAGAIN {
				o.busy.Store(false)
				return false // wait until the pipe is readable
			}
			return true
		})
		if n > 0 {
			w.Write(buf[:n])
		}
		o.busy.Store(false)
		if err != nil || rerr != nil || n <= 0 {
			return
		}
	}
}

// caughtUp reports whether everything written to the pipe before the call
// is in the Capture: the pipe holds nothing, and no read is between taking
// bytes out of it and writing them. The order matters: a read that took
// the bytes the count no longer shows had set busy before it did.
func (o *outPipe) caughtUp() bool {
	if o.rc == nil {
		return true
	}
	pending, cerr := 0, error(nil)
	if err := o.rc.Control(func(fd uintptr) {
		pending, cerr = unix.IoctlGetInt(int(fd), unix.TIOCINQ)
	}); err != nil {
		return true // closed: nothing more will be copied
	}
	return cerr == nil && pending == 0 && !o.busy.Load()
}
