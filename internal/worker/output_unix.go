//go:build unix

package worker

import (
	"errors"
	"io"
	"os"
	"sync"
	"syscall"
	"time"
)

// outPipe copies a captured stdout or stderr pipe into its Capture, and
// can complete the Capture with what the pipe holds now (settle).
type outPipe struct {
	f      *os.File
	w      io.Writer
	mu     sync.Mutex    // one settle at a time
	paused chan struct{} // the copier stopped at settle's deadline
	resume chan struct{}
	done   chan struct{} // the copier ended: EOF, or the pipe closed
}

func newOutPipe(f *os.File, w io.Writer) *outPipe {
	return &outPipe{f: f, w: w, paused: make(chan struct{}), resume: make(chan struct{}), done: make(chan struct{})}
}

// copy copies the pipe into w until EOF or until the pipe is closed,
// pausing while settle drains it.
func (o *outPipe) copy() {
	defer close(o.done)
	buf := make([]byte, 32<<10)
	for {
		n, err := o.f.Read(buf)
		if n > 0 {
			o.w.Write(buf[:n])
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			o.paused <- struct{}{}
			<-o.resume
			continue
		}
		if err != nil {
			return
		}
	}
}

// settle puts in w whatever the pipe holds now: it stops the copier (a
// read deadline in the past), lifts the deadline, reads the pipe until it
// is empty without blocking, and lets the copier go on.
func (o *outPipe) settle() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.f.SetReadDeadline(time.Now()) != nil {
		return // closed, or not pollable
	}
	select {
	case <-o.paused:
	case <-o.done:
		return // all of it is copied
	}
	// The deadline goes before the drain: a read past it fails before it
	// looks at the pipe, RawConn's too.
	o.f.SetReadDeadline(time.Time{})
	if rc, err := o.f.SyscallConn(); err == nil {
		buf := make([]byte, 32<<10)
		for {
			var n int
			var rerr error
			if err := rc.Read(func(fd uintptr) bool {
				n, rerr = syscall.Read(int(fd), buf)
				return true // never wait: EAGAIN means drained
			}); err != nil || rerr != nil || n <= 0 {
				break
			}
			o.w.Write(buf[:n])
		}
	}
	o.resume <- struct{}{}
}
