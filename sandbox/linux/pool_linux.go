package linux

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/skillbox-dev/skillbox/sandbox"
)

// pool is a bounded set of zygotes for one Spec. A call takes a slot (at
// most PoolSize calls run at once), then the most recently used idle
// zygote, or starts a new one. After the call the zygote goes back idle and
// pre-forks its next child. A reaper closes zygotes idle past IdleTimeout
// (keeping MinIdle) and replaces dead ones; once the pool has had no call
// for ReleaseAfter it closes them all and starts none until the next call,
// so a skill nobody calls costs no memory.
type pool struct {
	b     *box
	slots chan struct{}
	// minIdle zygotes are kept warm: the driver's MinIdle, or none for
	// exec: auto, whose spares serve the calls that come now and then.
	minIdle int

	mu       sync.Mutex
	changed  *sync.Cond // signalled when a zygote is started, returned or dropped
	idle     []*zygote  // most recently used last
	all      map[*zygote]bool
	starting int // zygotes being started; all+starting never exceeds PoolSize
	// ahead counts the zygotes being started for calls to come (startAhead),
	// which no caller owns, and waiting the calls waiting for one of them.
	ahead, waiting int
	lastCall       time.Time
	closed         bool
	stop           chan struct{}
	wg             sync.WaitGroup
	// dying counts zygotes being destroyed in the background; close waits
	// for them, so no jail or cgroup outlives the pool.
	dying sync.WaitGroup
	// life bounds the zygotes' starts in the background; close ends it,
	// so that a skill whose import hangs does not hold close up.
	life    context.Context
	endLife context.CancelFunc
}

func newPool(b *box, minIdle int) *pool {
	p := &pool{b: b, slots: make(chan struct{}, b.d.opts.PoolSize), minIdle: minIdle, all: map[*zygote]bool{}, stop: make(chan struct{}), lastCall: time.Now()}
	p.changed = sync.NewCond(&p.mu)
	p.life, p.endLife = context.WithCancel(context.Background())
	p.wg.Add(1)
	go p.reaper()
	return p
}

// warm starts MinIdle zygotes; the first one's failure (an import error
// in the skill, a jail that cannot start) is Open's error.
func (p *pool) warm(ctx context.Context) error {
	for i := 0; i < p.minIdle; i++ {
		// Counted as starting, so that the reaper, finding the pool short
		// of MinIdle meanwhile, does not start another beyond PoolSize.
		p.mu.Lock()
		if len(p.all)+p.starting >= cap(p.slots) {
			p.mu.Unlock()
			return nil
		}
		p.starting++
		p.mu.Unlock()
		z, err := p.launch(ctx)
		if err != nil {
			return err
		}
		p.put(z)
	}
	return nil
}

func (p *pool) call(ctx context.Context, req sandbox.Request) (*sandbox.Result, error) {
	sctx, scancel := p.b.startContext(ctx)
	defer scancel()
	select {
	case p.slots <- struct{}{}:
	case <-sctx.Done():
		return nil, p.b.startErr(ctx, sctx, sctx.Err())
	}
	defer func() { <-p.slots }()
	p.touch()
	defer p.touch() // a call's end counts too: a long call is not followed by a release
	for retried := false; ; retried = true {
		z, err := p.get(sctx)
		if err != nil {
			return nil, p.b.startErr(ctx, sctx, err)
		}
		res, err := p.callOn(ctx, z, req)
		// A zygote found dead before the call reached it: once more, on
		// another (p.put dropped this one).
		if !retried && errors.Is(err, errZygoteLost) {
			continue
		}
		return res, err
	}
}

// callOn runs req on z within the call's timeout and gives z back.
func (p *pool) callOn(ctx context.Context, z *zygote, req sandbox.Request) (*sandbox.Result, error) {
	cctx, cancel := p.b.callContext(ctx)
	defer cancel()
	res, err := z.call(cctx, req)
	p.put(z)
	return res, err
}

// get returns an idle usable zygote or starts one. The caller holds a
// slot, so at most PoolSize-1 zygotes are busy elsewhere: when there is no
// room to start one, a zygote the reaper is starting is about to arrive.
func (p *pool) get(ctx context.Context) (*zygote, error) {
	// Waiting for a zygote ends with ctx too.
	defer wakeOnDone(ctx, &p.mu, p.changed)()
	p.mu.Lock()
	for {
		for len(p.idle) > 0 {
			z := p.idle[len(p.idle)-1]
			p.idle = p.idle[:len(p.idle)-1]
			if z.usable() {
				p.mu.Unlock()
				return z, nil
			}
			p.drop(z)
		}
		if p.closed {
			p.mu.Unlock()
			return nil, context.Canceled
		}
		// A zygote started ahead that no other call waits for will be
		// ready before one started now.
		ahead := p.ahead > p.waiting
		if !ahead && len(p.all)+p.starting < cap(p.slots) {
			break
		}
		if err := ctx.Err(); err != nil {
			p.mu.Unlock()
			return nil, err
		}
		if ahead {
			p.waiting++
		}
		p.changed.Wait()
		if ahead {
			p.waiting--
		}
	}
	p.starting++
	p.mu.Unlock()
	return p.launch(ctx)
}

// startAhead starts a zygote in the background for the calls to come
// (exec: auto, at the first call of a burst), unless one lives or is being
// started; a call that finds none idle waits for it (get).
func (p *pool) startAhead() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.all)+p.starting > 0 {
		return
	}
	p.starting++
	p.ahead++
	p.wg.Add(1) // close waits for it, as for the reaper's starts
	go func() {
		defer p.wg.Done()
		ctx, cancel := p.b.startContext(p.life)
		defer cancel()
		z, err := p.launch(ctx)
		if err == nil {
			p.put(z)
		}
		p.mu.Lock()
		p.ahead--
		p.changed.Broadcast()
		p.mu.Unlock()
	}()
}

// launch starts a zygote already counted in p.starting and adds it to the
// pool (not to the idle list), or destroys it if the pool closed meanwhile.
func (p *pool) launch(ctx context.Context) (*zygote, error) {
	z, err := p.b.startZygote(ctx)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.starting--
	defer p.changed.Broadcast()
	if err != nil {
		return nil, err
	}
	if p.closed {
		p.destroyLater(z)
		return nil, context.Canceled
	}
	p.all[z] = true
	return z, nil
}

// drop forgets z and destroys it in the background. p.mu is held.
func (p *pool) drop(z *zygote) {
	delete(p.all, z)
	p.destroyLater(z)
	p.changed.Broadcast()
}

// destroyLater destroys z in the background; close waits for it.
func (p *pool) destroyLater(z *zygote) {
	p.dying.Add(1)
	go func() {
		defer p.dying.Done()
		z.destroy()
	}()
}

// put returns z to the idle list (or destroys it) and pre-forks its next
// child in the background.
func (p *pool) put(z *zygote) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || !z.usable() {
		p.drop(z)
		return
	}
	p.idle = append(p.idle, z)
	p.changed.Broadcast()
	if p.preforks() {
		go z.prefork()
	}
}

// empty reports whether the pool has no zygote, started or starting.
func (p *pool) empty() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.all)+p.starting == 0
}

// touch records a call for ReleaseAfter.
func (p *pool) touch() {
	p.mu.Lock()
	p.lastCall = time.Now()
	p.mu.Unlock()
}

// preforks reports whether an idle zygote forks its next child ahead of
// the call: not when disabled, nor for a one-shot sandbox, whose one call
// is over.
func (p *pool) preforks() bool { return !p.b.d.opts.NoPrefork && !p.b.spec.OneShot }

func (p *pool) reaper() {
	defer p.wg.Done()
	reapEvery(p.stop, p.b.d.opts.IdleTimeout, func() {
		p.mu.Lock()
		released := p.b.d.opts.ReleaseAfter > 0 && time.Since(p.lastCall) > p.b.d.opts.ReleaseAfter
		var keep []*zygote
		for i, z := range p.idle {
			surplus := len(p.idle)-i > p.minIdle
			idleTooLong := time.Since(z.lastUsedAt()) > p.b.d.opts.IdleTimeout
			if !z.usable() || released || (surplus && idleTooLong) {
				p.drop(z)
				continue
			}
			keep = append(keep, z)
		}
		p.idle = keep
		// A dead zygote is replaced, so the next call stays fast; the
		// replacement counts against PoolSize like any other.
		short := min(p.minIdle, cap(p.slots)) - len(p.all) - p.starting
		if released {
			short = 0
		}
		if short > 0 {
			p.starting += short
		}
		p.mu.Unlock()
		for ; short > 0; short-- {
			if z, err := p.launch(p.life); err == nil {
				p.put(z)
			}
		}
	})
}

// wakeOnDone broadcasts c (under mu) when ctx ends, so that a caller
// waiting on c for a zygote or a spare stops waiting with its context; the
// function it returns stops that.
func wakeOnDone(ctx context.Context, mu *sync.Mutex, c *sync.Cond) func() bool {
	return context.AfterFunc(ctx, func() {
		mu.Lock()
		c.Broadcast()
		mu.Unlock()
	})
}

// reapEvery calls reap at half the idle timeout (at least every second)
// until stop is closed: a pool's and a prestart sandbox's reaper.
func reapEvery(stop <-chan struct{}, idleTimeout time.Duration, reap func()) {
	tick := time.NewTicker(min(idleTimeout/2, time.Second))
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			reap()
		}
	}
}

// close destroys every zygote and waits for them.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	close(p.stop)
	p.changed.Broadcast()
	p.mu.Unlock()
	p.endLife()
	p.wg.Wait()
	// Callers in flight finish (their zygote is destroyed by put).
	for i := 0; i < cap(p.slots); i++ {
		p.slots <- struct{}{}
	}
	p.mu.Lock()
	zs := make([]*zygote, 0, len(p.all))
	for z := range p.all {
		zs = append(zs, z)
	}
	p.all, p.idle = map[*zygote]bool{}, nil
	p.mu.Unlock()
	for _, z := range zs {
		z.destroy()
	}
	p.dying.Wait()
}
