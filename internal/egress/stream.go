package egress

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
)

// streamChunk is how much a replacer reads from its source at a time.
const streamChunk = 16 << 10

// pattern is one thing a replacer looks for: from is replaced by to, and
// hit (if set) is called at each match; an error from hit ends the stream
// before from is passed on.
type pattern struct {
	from, to []byte
	hit      func() error
}

// replacer rewrites a stream, replacing every pattern with its
// replacement; where patterns overlap, the leftmost wins, then the
// longest. It holds back the last len(longest pattern)-1 bytes read so
// that a pattern split across reads is still found, and it never holds
// more than cost() bytes: a stream of any size passes in bounded memory.
type replacer struct {
	src    io.Reader
	closer io.Closer
	pats   []pattern
	maxLen int
	grow   int    // the most a replacement is longer than its pattern, per byte
	in     []byte // read, not yet settled (fixed capacity)
	out    []byte // settled, to return from off on
	off    int
	next   []int // per pattern, its next match in in, or -1
	eof    bool
	err    error
}

func newReplacer(src io.ReadCloser, pats []pattern) *replacer {
	r := &replacer{src: src, closer: src, pats: pats, next: make([]int, len(pats)), grow: 1}
	for _, p := range pats {
		r.maxLen = max(r.maxLen, len(p.from))
		r.grow = max(r.grow, (len(p.to)+len(p.from)-1)/max(len(p.from), 1))
	}
	r.in = make([]byte, 0, streamChunk+r.maxLen)
	r.out = make([]byte, 0, cap(r.in))
	return r
}

// cost is the most memory the replacer holds: its input window and its
// output, which replacements may make longer.
func (r *replacer) cost() int64 {
	return int64(cap(r.in)) * int64(1+r.grow)
}

func (r *replacer) Read(p []byte) (int, error) {
	for len(r.out) == 0 {
		if r.eof {
			return 0, r.err
		}
		n, err := r.src.Read(r.in[len(r.in):cap(r.in)])
		r.in = r.in[:len(r.in)+n]
		if err != nil {
			r.eof, r.err = true, err
		}
		if perr := r.process(); perr != nil {
			r.eof, r.err = true, perr
		}
	}
	n := copy(p, r.out[r.off:])
	r.off += n
	if r.off == len(r.out) {
		r.out, r.off = r.out[:0], 0 // reuse the buffer
	}
	return n, nil
}

// process moves what is settled from in to out.
func (r *replacer) process() error {
	pos := 0
	for i, p := range r.pats {
		r.next[i] = index(r.in, p.from, 0)
	}
	for {
		at, best := -1, -1
		for i, n := range r.next {
			if n >= 0 && (at < 0 || n < at || n == at && len(r.pats[i].from) > len(r.pats[best].from)) {
				at, best = n, i
			}
		}
		// Settle a match only when every pattern starting at or before it
		// is wholly in view.
		if at < 0 || !r.eof && at+r.maxLen > len(r.in) {
			break
		}
		p := r.pats[best]
		r.out = append(r.out, r.in[pos:at]...)
		pos = at + len(p.from)
		if p.hit != nil {
			if err := p.hit(); err != nil {
				r.shift(pos)
				return err
			}
		}
		r.out = append(r.out, p.to...)
		for i, n := range r.next {
			if n >= 0 && n < pos {
				r.next[i] = index(r.in, r.pats[i].from, pos)
			}
		}
	}
	keep := r.maxLen - 1
	if r.eof || keep < 0 {
		keep = 0
	}
	if cut := len(r.in) - keep; cut > pos {
		r.out = append(r.out, r.in[pos:cut]...)
		pos = cut
	}
	r.shift(pos)
	return nil
}

// shift drops the first n bytes of in.
func (r *replacer) shift(n int) {
	r.in = r.in[:copy(r.in, r.in[n:])]
}

func (r *replacer) Close() error { return r.closer.Close() }

// index is the position of sep in b at or after from, or -1.
func index(b, sep []byte, from int) int {
	if len(sep) == 0 {
		return -1
	}
	i := bytes.Index(b[from:], sep)
	if i < 0 {
		return -1
	}
	return from + i
}

// newRedactor replaces every form of every secret's value with the
// secret's placeholder.
func newRedactor(src io.ReadCloser, secrets []*secret) *replacer {
	var pats []pattern
	for _, s := range secrets {
		for _, f := range s.forms {
			pats = append(pats, pattern{from: f, to: []byte(s.Placeholder)})
		}
	}
	return newReplacer(src, pats)
}

// budget bounds the bytes the proxy holds on the sandbox's behalf at once
// (Config.MaxBuffer): bodies read before they are forwarded, stream
// windows, decompression windows.
type budget struct {
	max  int64
	used atomic.Int64
}

// take reserves n bytes, or reports that they would exceed the budget.
func (b *budget) take(n int64) bool {
	if b.used.Add(n) > b.max {
		b.used.Add(-n)
		return false
	}
	return true
}

func (b *budget) give(n int64) { b.used.Add(-n) }

// hold reserves n bytes of the proxy's buffer budget for the request,
// given back when it ends; over the budget it returns a limit denial.
func (p *Proxy) hold(st *reqState, n int64, what string) *denial {
	if !p.buf.take(n) {
		return &denial{status: http.StatusTooManyRequests, decision: DecisionLimit,
			reason: fmt.Sprintf("buffer limit reached: %s needs %d bytes, over the proxy's buffer budget (MaxBuffer %d bytes) with what it already holds", what, n, p.buf.max)}
	}
	st.held.Add(n)
	return nil
}

// release gives back what the request held.
func (p *Proxy) release(st *reqState) { p.buf.give(st.held.Swap(0)) }
