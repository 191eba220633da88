//go:build unix && !linux

package pyodide

import (
	"context"
	"errors"
	"os/exec"

	"github.com/skillbox-dev/skillbox/internal/egress"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// workerJail: there is no linux jail off Linux.
type workerJail struct{}

func jailState(fake string) (bool, string) { return false, "not Linux" }

func newWorkerJail(files, sandbox.Spec, func(*egress.Config)) (*workerJail, []string, error) {
	return nil, nil, errors.New("not Linux")
}

func (w *workerJail) wrap(_ context.Context, _ *exec.Cmd, start func(*exec.Cmd) error) (func(*exec.Cmd) error, func()) {
	return start, func() {}
}
