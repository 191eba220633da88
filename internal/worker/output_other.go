//go:build !linux

package worker

import (
	"io"
	"os"
)

// outPipe copies a captured stdout or stderr pipe into its Capture. Here
// it cannot tell how much the pipe holds: caughtUp always says yes.
type outPipe struct{ f *os.File }

func newOutPipe(f *os.File) *outPipe { return &outPipe{f: f} }

func (o *outPipe) copyTo(w io.Writer) { io.Copy(w, o.f) }

func (o *outPipe) caughtUp() bool { return true }
