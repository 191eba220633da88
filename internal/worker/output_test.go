//go:build unix

package worker

import (
	"fmt"
	"os"
	"runtime"
	"testing"
)

// settle completes the capture with what the pipe holds even when the
// copier has not read it yet: written and settled at once, with one P, the
// copier is woken by settle's deadline before it reads, so the data is
// left to settle's own read (which once failed on that same deadline).
func TestSettleReadsWhatTheCopierHasNot(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	c := NewCapture(1 << 20)
	o := newOutPipe(r, c)
	go o.copy()
	want := ""
	for i := range 200 {
		line := fmt.Sprintf("line %d\n", i)
		want += line
		if _, err := w.WriteString(line); err != nil {
			t.Fatal(err)
		}
		o.settle()
		if got := string(c.Bytes()); got != want {
			t.Fatalf("after settle %d: capture holds %d bytes, want %d (ending %q)", i, len(got), len(want), line)
		}
	}
}
