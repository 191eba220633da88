//go:build !unix

package worker

import (
	"io"
	"os"
)

// outPipe copies a captured stdout or stderr pipe into its Capture. Here
// pipes have no deadlines: settle cannot stop the copy, and does nothing.
type outPipe struct {
	f *os.File
	w io.Writer
}

func newOutPipe(f *os.File, w io.Writer) *outPipe { return &outPipe{f: f, w: w} }

func (o *outPipe) copy() { io.Copy(o.w, o.f) }

func (o *outPipe) settle() {}
