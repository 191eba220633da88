package worker

import (
	"bytes"
	"fmt"
	"sync"
)

// tailSize is how many of the last bytes written a Capture remembers for Tail.
const tailSize = 4 << 10

// Capture is an io.Writer for a skill's stdout or stderr. It keeps the first
// max bytes, counts the rest, and remembers the last few KiB (for error
// reports). Writes never fail, so a chatty skill is truncated, not blocked.
// It is safe for concurrent use.
type Capture struct {
	mu      sync.Mutex
	max     int64
	buf     []byte
	dropped int64
	tail    []byte

	// After ResetAfter: the mark still to come (nil once seen), the bytes
	// that may be its start, and how many bytes before it were skipped.
	mark    []byte
	pending []byte
	skipped int64
}

// NewCapture returns a Capture that keeps at most max bytes (max <= 0 keeps
// nothing but still counts).
func NewCapture(max int64) *Capture { return &Capture{max: max} }

// Write records p and always reports len(p), nil.
func (c *Capture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(p)
	if c.mark != nil {
		p = c.skip(p)
	}
	c.record(p)
	return n, nil
}

// skip consumes p while the mark is still to come, and returns what
// follows the mark (nothing until it is seen).
func (c *Capture) skip(p []byte) []byte {
	c.pending = append(c.pending, p...)
	if i := bytes.Index(c.pending, c.mark); i >= 0 {
		c.skipped += int64(i)
		rest := c.pending[i+len(c.mark):]
		c.mark, c.pending = nil, nil
		return rest
	}
	// Keep what may be the mark's start, skip the rest.
	keep := min(len(c.pending), len(c.mark)-1)
	c.skipped += int64(len(c.pending) - keep)
	c.pending = append(c.pending[:0], c.pending[len(c.pending)-keep:]...)
	return nil
}

// record keeps p within the cap and in the tail.
func (c *Capture) record(p []byte) {
	n := len(p)
	if room := c.max - int64(len(c.buf)); room > 0 {
		k := int64(n)
		if k > room {
			k = room
		}
		c.buf = append(c.buf, p[:k]...)
		c.dropped += int64(n) - k
	} else {
		c.dropped += int64(n)
	}
	if n >= tailSize {
		c.tail = append(c.tail[:0], p[n-tailSize:]...)
	} else {
		c.tail = append(c.tail, p...)
		if len(c.tail) > 2*tailSize {
			c.tail = append(c.tail[:0], c.tail[len(c.tail)-tailSize:]...)
		}
	}
}

// Bytes returns a copy of the kept bytes, followed, when some were dropped,
// by "\n[skillbox: output truncated, N more bytes]".
func (c *Capture) Bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := append([]byte(nil), c.buf...)
	if c.dropped > 0 {
		out = fmt.Appendf(out, "\n[skillbox: output truncated, %d more bytes]", c.dropped)
	}
	return out
}

// Truncated reports whether bytes were dropped.
func (c *Capture) Truncated() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dropped > 0
}

// Dropped is the number of bytes written beyond the cap.
func (c *Capture) Dropped() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dropped
}

// Written is the number of bytes recorded since the last reset, kept or
// dropped (after ResetAfter: those after its mark).
func (c *Capture) Written() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return int64(len(c.buf)) + c.dropped
}

// Tail returns (a copy of) the last up to n bytes written, n <= 4 KiB,
// whether or not they were kept.
func (c *Capture) Tail(n int) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n > tailSize {
		n = tailSize
	}
	t := c.tail
	if len(t) > n {
		t = t[len(t)-n:]
	}
	return append([]byte(nil), t...)
}

// Reset forgets everything written so far (e.g. between session calls).
func (c *Capture) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reset()
}

func (c *Capture) reset() {
	c.buf, c.dropped, c.tail = c.buf[:0], 0, c.tail[:0]
	c.mark, c.pending, c.skipped = nil, nil, 0
}

// ResetAfter forgets everything written so far, and everything written
// from now on up to and including the first occurrence of mark (a
// non-empty string the writer could not have known in advance): what a
// writer that shares the descriptor wrote before the mark is not
// recorded, whenever it arrives. Marked tells whether the mark was seen
// and how many bytes it skipped.
func (c *Capture) ResetAfter(mark []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reset()
	c.mark = append([]byte(nil), mark...)
}

// Marked reports, after ResetAfter, whether its mark has been written and
// how many bytes were skipped before it.
func (c *Capture) Marked() (seen bool, skipped int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mark == nil, c.skipped
}
