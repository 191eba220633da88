package linux

import (
	"context"
	"sync"
	"time"

	"github.com/skillbox-dev/skillbox/internal/backend"
	"github.com/skillbox-dev/skillbox/internal/cgroup"
	"github.com/skillbox-dev/skillbox/internal/worker"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// cold runs every call in a new jail with a single-mode harness: the
// slowest way, kept for benchmarks and as the simplest reference.
type cold struct {
	b *box
	// teardown tracks jails being destroyed after their call returned.
	teardown sync.WaitGroup
}

func (c *cold) call(ctx context.Context, req sandbox.Request) (*sandbox.Result, error) {
	b := c.b
	sctx, scancel := b.startContext(ctx)
	defer scancel()
	j, err := b.startJail(sctx, false, false, b.lim.Stdio)
	if err != nil {
		return nil, b.startErr(ctx, sctx, err)
	}
	// The jail is destroyed after the call returns: its exit tears down
	// its namespaces (about 10 ms on these machines) before it can be
	// reaped, and the caller need not wait for that. close waits for it.
	c.teardown.Add(1)
	defer func() {
		go func() {
			defer c.teardown.Done()
			j.destroy()
		}()
	}()
	j.Conn.SetMaxResult(int(b.lim.Output))
	if err := b.initWorker(sctx, j.Process, b.initMsg(worker.ModeSingle)); err != nil {
		// The jail's cgroup is new: whatever it counted is this call's,
		// from the start (Python may already have run out of memory).
		err = b.imageExited(sctx, j, b.judge.CallError(sctx, err, j.cg, cgroup.Counts{}))
		return nil, j.loadFailed(ctx, b.startErr(ctx, sctx, err))
	}
	return b.callJail(ctx, j, req)
}

// imageExited explains err, a single-mode worker's failure to become
// ready, with its stderr when it runs an image's python (which may not run
// the harness at all); otherwise it returns err.
func (b *box) imageExited(ctx context.Context, j *jailProc, err error) error {
	if b.container == nil {
		return err
	}
	wctx, wcancel := context.WithTimeout(ctx, time.Second)
	j.WaitOutput(wctx) // the worker exited: its stderr ends soon
	wcancel()
	return b.container.ExitedErr(err, j.Stderr.Bytes())
}

// callJail runs req on j, a jail of its own whose single-mode harness has
// imported the skill, within the call's timeout. The jail is the call's
// alone: everything its fresh cgroup counted, and its whole peak memory,
// are the call's.
func (b *box) callJail(ctx context.Context, j *jailProc, req sandbox.Request) (*sandbox.Result, error) {
	ctx, cancel := b.callContext(ctx)
	defer cancel()
	value, err := j.Call(ctx, 1, req.Params, req.Config)
	if err != nil {
		err = b.judge.CallError(ctx, err, j.cg, cgroup.Counts{})
		// The jail is the call's alone, destroyed after it: killed now,
		// its output ends at once (a skill still running after its
		// timeout is not waited for).
		j.Kill()
		return backend.PrintedBefore(ctx, j.WaitOutput, j.Stdout, j.Stderr), err
	}
	// The harness exits after its reply; stdout and stderr are complete
	// once every process in the jail closed them.
	if err := j.WaitOutput(ctx); err != nil {
		return nil, b.judge.TimeoutErr(ctx)
	}
	var peak int64
	if j.peak != nil {
		peak = j.peak.Read()
	} else if j.cg != nil {
		peak = j.cg.PeakMemory()
	}
	return result(value, j.Stdout, j.Stderr, peak), nil
}

func (c *cold) close() { c.teardown.Wait() }
