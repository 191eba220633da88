package jailbuild

import (
	"bytes"
	"testing"
)

// Output without a newline is handed on in maxLine pieces, however large
// the writes: the writer holds at most one piece. It used to hand on one
// piece per Write and keep the rest, so a build step (an sdist's setup.py)
// writing without newlines grew skillbox's own memory by three quarters of
// what it wrote, outside the build's cgroup, until the build's timeout.
func TestLineWriterBoundsAnEndlessLine(t *testing.T) {
	var pieces int
	w := &lineWriter{fn: func(l string) {
		if len(l) > maxLine {
			t.Fatalf("a piece of %d bytes, over maxLine", len(l))
		}
		pieces++
	}}
	chunk := bytes.Repeat([]byte("x"), 32<<10) // what exec's copy hands on
	for range 64 {
		w.Write(chunk)
		if len(w.buf) > maxLine {
			t.Fatalf("the writer holds %d bytes of an unfinished line, over maxLine (%d)", len(w.buf), maxLine)
		}
	}
	// All but the last piece, which waits for the rest of its line.
	if want := 64*len(chunk)/maxLine - 1; pieces != want {
		t.Errorf("%d pieces handed on, want %d", pieces, want)
	}
	if tail := w.tail(); len(tail) > 6*maxLine {
		t.Errorf("tail of %d bytes", len(tail))
	}
}
