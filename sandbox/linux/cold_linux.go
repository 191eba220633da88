package linux

import (
	"context"
	"fmt"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/worker"
)

// cold runs every call in a new jail with a single-mode harness: the
// slowest way, kept for benchmarks and as the simplest reference.
type cold struct{ b *box }

func (c *cold) call(ctx context.Context, req sandbox.Request) (*sandbox.Result, error) {
	b := c.b
	p, err := newPipes()
	if err != nil {
		return nil, errdefs.Wrap(errdefs.Internal, err, "pipes")
	}
	defer p.closeAll()
	cfg := b.base
	cfg.Argv = b.argv()
	j, err := b.startJail(launch{cfg: cfg, fd3: p.reqR, fd4: p.repW, stdout: p.outW, stderr: p.errW, limits: b.cgLimits()})
	p.closeJailEnds()
	p.reqR, p.repW, p.outW, p.errW = nil, nil, nil, nil
	if err != nil {
		return nil, errdefs.Wrap(errdefs.Internal, err, "start jail")
	}
	defer j.destroy()
	stdout, outDone := capture(p.outR, b.lim.Stdio)
	stderr, errDone := capture(p.errR, b.lim.Stdio)
	p.outR, p.errR = nil, nil
	before := snapshot(j.cg)
	go func() {
		// Both frames at once; a large call must not block the reader.
		worker.WriteFrame(p.reqW, b.initFrame(worker.ModeSingle))
		worker.WriteFrame(p.reqW, callFrame(1, req))
	}()
	rep, rerr := readReply(ctx, p.repR, b.maxFrame())
	if rerr == nil {
		if err := loadError(rep, nil, nil); err != nil {
			return nil, err
		}
		rep, rerr = readReply(ctx, p.repR, b.maxFrame())
	}
	if rerr != nil {
		j.kill()
	}
	select {
	case <-j.done:
	case <-time.After(2 * time.Second):
		j.kill()
		<-j.done
	}
	<-outDone
	<-errDone
	return b.finish(ctx, rep, rerr, stdout, stderr, j.cg, before, func() string {
		return fmt.Sprintf("worker exited (%v)", j.cmd.ProcessState)
	})
}

func (c *cold) close() {}
