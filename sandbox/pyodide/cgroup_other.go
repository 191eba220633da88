//go:build unix && !linux

package pyodide

import (
	"errors"
	"os/exec"

	"github.com/skillbox-dev/skillbox/sandbox"
)

// cgroups: none off Linux; memory is bounded by the WebAssembly and V8
// heap caps only and memory-limit is not claimed.
type cgroups struct{}

func detectCgroups(map[string]bool) cgroups { return cgroups{} }

func (cgroups) has(string) bool                               { return false }
func (cgroups) features() []sandbox.Feature                   { return nil }
func (cgroups) layers() []sandbox.Layer                       { return nil }
func (cgroups) newGroup(sandbox.Limits) (*workerGroup, error) { return nil, nil }

type workerGroup struct{}

func (*workerGroup) launch(cmd *exec.Cmd) error   { return cmd.Start() }
func (*workerGroup) oomKilled() bool              { return false }
func (*workerGroup) pidsRefused() bool            { return false }
func (*workerGroup) peak() int64                  { return 0 }
func (*workerGroup) remove()                      {}
func (*workerGroup) workerThreads(int) int        { return -1 } // not counted: no /proc
func (*workerGroup) idleWorkers(int) map[int]bool { return nil }
func (*workerGroup) alive(int, map[int]bool) int  { return 0 }
func (*workerGroup) strays() int                  { return 0 }

// track: no cgroup, so the threads a call's worker starts cannot be told
// apart; each host serves one call.
func (*workerGroup) track(map[int]bool) error {
	return errors.New("no cgroups off Linux")
}
