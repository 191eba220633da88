package linux

import (
	"context"

	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/worker"
)

// cold runs every call in a new jail with a single-mode harness: the
// slowest way, kept for benchmarks and as the simplest reference.
type cold struct{ b *box }

func (c *cold) call(ctx context.Context, req sandbox.Request) (*sandbox.Result, error) {
	b := c.b
	j, err := b.startJail(ctx, false, b.lim.Stdio)
	if err != nil {
		return nil, err
	}
	defer j.destroy()
	j.Conn.SetMaxResult(int(b.lim.Output))
	before := snapshot(j.cg)
	if err := b.initWorker(ctx, j.Process, worker.ModeSingle); err != nil {
		return nil, b.callError(ctx, err, j.cg, before)
	}
	value, err := j.Call(ctx, 1, req.Params, req.Config)
	if err != nil {
		return nil, b.callError(ctx, err, j.cg, before)
	}
	j.Wait() // stdout and stderr complete
	return result(value, j.Stdout, j.Stderr, j.cg), nil
}

func (c *cold) close() {}
