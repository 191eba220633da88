//go:build unix && !linux

package pyodide

import (
	"context"
	"crypto/x509"
	"errors"
	"os/exec"

	"github.com/skillbox-dev/skillbox/sandbox"
)

// workerJail: there is no jail off Linux.
type workerJail struct{}

func jailState(noJail string) (bool, string) { return false, "not Linux" }

func newWorkerJail(files, sandbox.Spec, *x509.CertPool) (*workerJail, []string, error) {
	return nil, nil, errors.New("not Linux")
}

func (w *workerJail) certFile() string     { return "" }
func (w *workerJail) trustNotes() []string { return nil }

func (w *workerJail) wrap(_ context.Context, _ *exec.Cmd, cg *workerGroup) (func(*exec.Cmd) error, func()) {
	return cg.launch, func() {}
}
