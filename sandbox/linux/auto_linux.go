package linux

import (
	"context"

	"github.com/skillbox-dev/skillbox/sandbox"
)

// auto (exec: auto, the default) runs each call on a ready spare jail
// when there is one, as prestart does, and otherwise forks it from a
// zygote, as the pool does. Calls that come now and then (an agent's tools
// between its turns) get prestart's path: the skill already imported in an
// interpreter of its own, ~1 ms less than a fork and half the memory per
// loaded skill. Calls that come faster than a spare starts get the
// zygote's: a fork per call costs about half the CPU of a jail's start,
// which is what sustained load pays.
//
// The two never run at once for long: a call that finds no spare ready
// goes to the zygotes, and while any zygote lives no spare is started, so
// a burst does not pay a jail's start beside each fork. The first such
// call waits for the spare already being started, if any, while the first
// zygote starts beside it for the calls that follow. The zygotes keep
// none warm (their MinIdle is 0): after IdleTimeout without calls they
// close, and the prestart reaper starts MinIdle spares again. Either way
// every call runs in a process of its own, started or forked before it
// from trusted code only.
type auto struct {
	spares  *prestart
	zygotes *pool
}

func newAuto(b *box) *auto {
	a := &auto{spares: newPrestart(b), zygotes: newPool(b, 0)}
	a.spares.paused = func() bool { return !a.zygotes.empty() }
	return a
}

// warm starts the first spare, so that a skill that fails to import
// fails Open.
func (a *auto) warm(ctx context.Context) error { return a.spares.warm(ctx) }

func (a *auto) call(ctx context.Context, req sandbox.Request) (*sandbox.Result, error) {
	if j := a.spares.tryTake(); j != nil {
		return a.spares.callOn(ctx, j, req)
	}
	if a.zygotes.empty() {
		// The first call of a burst (one that comes within a spare's
		// start of the previous): the spare being started will be ready
		// before a zygote could be, so the call waits for it, and a zygote
		// starts beside it for the calls that follow.
		a.zygotes.startAhead()
		b := a.spares.b
		sctx, cancel := b.startContext(ctx)
		defer cancel()
		if j := a.spares.waitStarting(sctx); j != nil {
			return a.spares.callOn(ctx, j, req)
		}
		if err := sctx.Err(); err != nil {
			return nil, b.startErr(ctx, sctx, err)
		}
	}
	return a.zygotes.call(ctx, req)
}

func (a *auto) close() {
	a.spares.close()
	a.zygotes.close()
}
