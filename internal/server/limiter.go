package server

import (
	"context"
	"sync"
)

// limiter bounds the calls in flight and lets a shutdown wait for them.
type limiter struct {
	slots chan struct{}
	mu    sync.Mutex
	idle  chan struct{} // closed while nothing is in flight
	n     int
}

func newLimiter(n int) *limiter {
	l := &limiter{slots: make(chan struct{}, n), idle: make(chan struct{})}
	close(l.idle)
	return l
}

// tryAcquire takes a slot if one is free.
func (l *limiter) tryAcquire() bool {
	select {
	case l.slots <- struct{}{}:
		l.inc()
		return true
	default:
		return false
	}
}

// acquire waits for a slot or ctx.
func (l *limiter) acquire(ctx context.Context) error {
	select {
	case l.slots <- struct{}{}:
		l.inc()
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *limiter) inc() {
	l.mu.Lock()
	if l.n == 0 {
		l.idle = make(chan struct{})
	}
	l.n++
	l.mu.Unlock()
}

func (l *limiter) dec() {
	l.mu.Lock()
	l.n--
	if l.n == 0 {
		close(l.idle)
	}
	l.mu.Unlock()
}

// release frees a slot taken by tryAcquire or acquire.
func (l *limiter) release() {
	l.dec()
	<-l.slots
}

// hold counts a request as in flight without taking a slot (a call whose
// body is being read, before it takes one), so that a shutdown waits for
// it as for a call; the returned func ends the hold.
func (l *limiter) hold() (end func()) {
	l.inc()
	return sync.OnceFunc(l.dec)
}

// free reports whether a slot is free now (another may take it next).
func (l *limiter) free() bool { return len(l.slots) < cap(l.slots) }

// inFlight returns the number of slots taken and holds.
func (l *limiter) inFlight() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

// drained returns a channel closed once nothing is in flight (no slot
// taken, no hold).
func (l *limiter) drained() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.idle
}
