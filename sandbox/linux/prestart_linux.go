package linux

import (
	"context"
	"sync"
	"time"

	"github.com/skillbox-dev/skillbox/internal/cgroup"
	"github.com/skillbox-dev/skillbox/internal/worker"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// afterCall is how long a prestart sandbox waits after a call returns
// before it destroys the call's jail and starts the next spare: started
// at once, that work (a jail's start is ~60 ms of CPU, its teardown the
// kernel's) competes with the answer the caller is still writing, which
// measured ~1 ms slower for it on 2 cores (docs/PERFORMANCE.md, "Served
// call overhead").
const afterCall = 5 * time.Millisecond

// prestart runs every call in a jail of its own, as cold does, but starts
// those jails before their calls: spare jails whose single-mode harness
// has imported the skill wait for calls, and each call takes one. The
// call's interpreter is a fresh exec, not a fork: every page it touches
// in the call is its own and already faulted in, where a zygote's child
// copies each page of the zygote it writes to; and a waiting spare is one
// process, where a zygote keeps itself and a pre-forked child. No process
// serves more than one call and nothing is shared between calls but the
// read-only root.
//
// MinIdle spares are kept while the sandbox is in use. A call that finds
// none waits for one being started, or starts its own as cold does; each
// such call raises the number kept by one, up to PoolSize, so that calls
// close together find spares; once no call has found the spares short for
// IdleTimeout, the surplus is closed. After ReleaseAfter without a call
// every spare is closed, and none is started until the next call.
type prestart struct {
	b *box

	mu        sync.Mutex
	changed   *sync.Cond  // signalled when a start ends and on close
	ready     []*jailProc // spares, oldest first
	starting  int         // spares being started
	waiting   int         // calls waiting for one of those
	want      int         // spares to keep: ready plus starting
	lastCall  time.Time
	lastShort time.Time // when a call last found no spare ready
	released  bool      // the spares were closed for want of calls
	closed    bool
	stop      chan struct{}
	// paused, when set (exec: auto), says not to start spares now: the
	// sandbox's zygotes serve its calls. The reaper starts the missing
	// spares once it no longer holds.
	paused func() bool
	// bg tracks spare starts, jails being destroyed and the reaper;
	// close waits for them, so no jail or cgroup outlives the sandbox.
	bg sync.WaitGroup
	// life bounds the spares' starts in the background; close ends it, so
	// that a skill whose import hangs does not hold close up for a start's
	// whole bound.
	life    context.Context
	endLife context.CancelFunc
}

func newPrestart(b *box) *prestart {
	now := time.Now()
	p := &prestart{b: b, stop: make(chan struct{}), lastCall: now, lastShort: now, want: b.minSpares()}
	p.life, p.endLife = context.WithCancel(context.Background())
	p.changed = sync.NewCond(&p.mu)
	p.bg.Add(1)
	go p.reaper()
	return p
}

// minSpares is how many spares a prestart sandbox keeps while in use.
func (b *box) minSpares() int { return max(b.d.opts.MinIdle, 0) }

// warm starts the first spare, so that a skill that fails to import
// fails Open, as a zygote's does; with MinIdle none, nothing starts.
func (p *prestart) warm(ctx context.Context) error {
	if p.want == 0 {
		return nil
	}
	sctx, cancel := p.b.startContext(ctx)
	defer cancel()
	// Counted as starting, so that the reaper, which tops the spares up
	// every second, does not start another beside it (a slow import), nor
	// one that close would wait for (an import that never ends).
	p.mu.Lock()
	p.starting++
	p.mu.Unlock()
	j, err := p.start(sctx)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.starting--
	p.changed.Broadcast()
	if err != nil {
		return p.b.startErr(ctx, sctx, err)
	}
	p.add(j)
	return nil
}

// start starts a jail with the single-mode harness and waits until the
// skill is imported. The jail outlives ctx (a spare waits for its call).
func (p *prestart) start(ctx context.Context) (*jailProc, error) {
	b := p.b
	j, err := b.startJail(context.WithoutCancel(ctx), false, true, b.lim.Stdio)
	if err != nil {
		return nil, err
	}
	j.Conn.SetMaxResult(int(b.lim.Output))
	// The spare rehearses the harness's part of a call before it is ready
	// (a stand-in skill), so the call is its second run, not its first:
	// ~0.1 ms of a spaced served call (docs/PERFORMANCE.md).
	in := b.initMsg(worker.ModeSingle)
	in.Rehearse = true
	if err := b.initWorker(ctx, j.Process, in); err != nil {
		err = j.loadFailed(ctx, b.imageExited(ctx, j, b.startLimit(j.cg, err)))
		j.destroy()
		return nil, err
	}
	// The call reads its peak memory from this file (its whole jail's, the
	// import included, as a cold call's): opened now, not on the call's
	// path, where opening a cgroup file took ~0.2 ms.
	j.peak = cgroup.OpenPeak(j.cg)
	return j, nil
}

func (p *prestart) call(ctx context.Context, req sandbox.Request) (*sandbox.Result, error) {
	j, err := p.get(ctx)
	if err != nil {
		return nil, err
	}
	return p.callOn(ctx, j, req)
}

// tryTake returns a ready spare, or nil at once when there is none
// (exec: auto, whose zygotes take the call then); either way it counts as
// a call for ReleaseAfter.
func (p *prestart) tryTake() *jailProc {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastCall = time.Now()
	return p.take()
}

// waitStarting returns a ready spare, or waits for one being started that
// no other call waits for (exec: auto, when a call finds none ready); nil
// when there is none to wait for or ctx ends first.
func (p *prestart) waitStarting(ctx context.Context) *jailProc {
	defer wakeOnDone(ctx, &p.mu, p.changed)()
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		if j := p.take(); j != nil {
			return j
		}
		if p.closed || ctx.Err() != nil || p.starting <= p.waiting {
			return nil
		}
		p.waiting++
		p.changed.Wait()
		p.waiting--
	}
}

// callOn runs req on the spare j, then has j destroyed and the spares
// topped up.
func (p *prestart) callOn(ctx context.Context, j *jailProc, req sandbox.Request) (*sandbox.Result, error) {
	b := p.b
	// The call's jail is destroyed, and the spares topped up, once the
	// caller has had its answer (afterCall). A call's end counts as a call
	// too: a long one is not followed by a release.
	defer func() {
		p.mu.Lock()
		p.lastCall = time.Now()
		p.mu.Unlock()
		p.bg.Add(1)
		time.AfterFunc(afterCall, func() {
			defer p.bg.Done()
			j.destroy()
			p.topUp()
		})
	}()
	j.run.BeginCall(ctx)
	defer j.run.EndCall()
	return b.callJail(ctx, j, req)
}

// get returns a spare for a call: a ready one, else one being started
// that no other call waits for, else a jail started now (within the
// call's start bound, as cold starts one).
func (p *prestart) get(ctx context.Context) (*jailProc, error) {
	b := p.b
	sctx, scancel := b.startContext(ctx)
	defer scancel()
	defer wakeOnDone(sctx, &p.mu, p.changed)()
	p.mu.Lock()
	p.lastCall = time.Now()
	short := false
	for {
		if j := p.take(); j != nil {
			p.mu.Unlock()
			return j, nil
		}
		if !short && !p.released {
			// Calls outran the spares: keep one more from now on.
			p.lastShort = time.Now()
			p.want = min(p.want+1, max(p.b.d.opts.PoolSize, 1))
		}
		short, p.released = true, false
		if p.closed || sctx.Err() != nil || p.starting <= p.waiting {
			break
		}
		p.waiting++
		p.changed.Wait()
		p.waiting--
	}
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return nil, b.startErr(ctx, sctx, context.Canceled)
	}
	if err := sctx.Err(); err != nil {
		return nil, b.startErr(ctx, sctx, err)
	}
	j, err := p.start(sctx)
	if err != nil {
		return nil, b.startErr(ctx, sctx, err)
	}
	return j, nil
}

// take pops the oldest ready spare still alive; one that died while it
// waited (the OOM killer, an operator, a thread its import started) is
// destroyed: no call reached it. p.mu is held.
func (p *prestart) take() *jailProc {
	for len(p.ready) > 0 {
		j := p.ready[0]
		p.ready = p.ready[1:]
		if !j.Exited() {
			return j
		}
		p.destroyLater(j)
	}
	return nil
}

// add makes j a ready spare, or destroys it when the sandbox closed or
// has enough. p.mu is held.
func (p *prestart) add(j *jailProc) {
	if p.closed || len(p.ready)+p.starting >= p.want {
		p.destroyLater(j)
		return
	}
	p.ready = append(p.ready, j)
	p.changed.Broadcast()
}

// topUp starts spares in the background until ready and starting ones
// make want. A start that fails adds none (the next call that finds no
// spare starts its own jail and reports what failed), and is not retried
// until the next call.
func (p *prestart) topUp() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.topUpLocked()
}

// topUpLocked is topUp with p.mu held.
func (p *prestart) topUpLocked() {
	if p.paused != nil && p.paused() {
		return
	}
	for !p.closed && len(p.ready)+p.starting < p.want {
		p.starting++
		p.bg.Add(1)
		go func() {
			defer p.bg.Done()
			ctx, cancel := p.b.startContext(p.life)
			defer cancel()
			j, err := p.start(ctx)
			p.mu.Lock()
			defer p.mu.Unlock()
			p.starting--
			p.changed.Broadcast()
			if err == nil {
				// Counted as starting no more: add sees room for it.
				p.add(j)
			}
		}()
	}
}

// destroyLater destroys j in the background: its exit tears down its
// namespaces, which no caller need wait for. close waits for it.
func (p *prestart) destroyLater(j *jailProc) {
	p.bg.Add(1)
	go func() {
		defer p.bg.Done()
		j.destroy()
	}()
}

// reaper closes surplus spares once calls have not outrun them for
// IdleTimeout, and every spare after ReleaseAfter without a call.
func (p *prestart) reaper() {
	defer p.bg.Done()
	opts := p.b.d.opts
	reapEvery(p.stop, opts.IdleTimeout, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if time.Since(p.lastShort) > opts.IdleTimeout {
			p.want = p.b.minSpares()
		}
		keep := p.want
		if opts.ReleaseAfter > 0 && time.Since(p.lastCall) > opts.ReleaseAfter {
			keep = 0
			// The next call finding none is not calls outrunning spares.
			p.released = p.released || len(p.ready) > 0
		}
		for len(p.ready) > keep {
			p.destroyLater(p.ready[0])
			p.ready = p.ready[1:]
		}
		// Spares held back while zygotes served the calls (exec: auto)
		// start once they are gone, unless the sandbox was released.
		if p.paused != nil && keep > 0 {
			p.topUpLocked()
		}
	})
}

// close destroys every spare and waits for every jail of the sandbox.
func (p *prestart) close() {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.stop)
		p.changed.Broadcast()
	}
	for _, j := range p.ready {
		p.destroyLater(j)
	}
	p.ready = nil
	p.mu.Unlock()
	p.endLife()
	p.bg.Wait()
}
