// Package netns starts processes in a network namespace of their own that
// holds only loopback, on which the caller listens (skillbox's egress
// proxy): the only way out of that namespace is what serves the listener.
// The gvisor backend starts runsc this way, and image builds with a
// network grant start their builder this way.
package netns

import (
	"fmt"
	"net"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/skillbox-dev/skillbox/internal/jail/stage"
)

// Start runs start (which starts processes: exec.Cmd.Start) on a thread
// that first enters a new network namespace, brings its loopback up and
// listens on addr (TCP, IPv4) there; it returns that listener (none, and
// nil, when addr is "": a namespace holding only loopback). The
// processes start makes inherit the namespace. The thread is never given
// back to the runtime, so no other goroutine runs in the namespace: it
// ends with its goroutine, after start returns, or, when keep is not nil,
// once keep is closed: prctl(2) sends a Pdeathsig when the thread that
// started the process ends, so a caller using it keeps the thread until
// the process ended.
func Start(addr string, start func() error, keep <-chan struct{}) (net.Listener, error) {
	type result struct {
		l   net.Listener
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		l, err := func() (net.Listener, error) {
			if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
				return nil, fmt.Errorf("new network namespace: %w", err)
			}
			if err := stage.LoopbackUp(); err != nil {
				return nil, fmt.Errorf("loopback: %w", err)
			}
			if addr == "" {
				return nil, start()
			}
			l, err := net.Listen("tcp4", addr)
			if err != nil {
				return nil, fmt.Errorf("egress listener: %w", err)
			}
			if err := start(); err != nil {
				l.Close()
				return nil, err
			}
			return l, nil
		}()
		done <- result{l, err}
		if err == nil && keep != nil {
			<-keep
		}
	}()
	r := <-done
	return r.l, r.err
}
