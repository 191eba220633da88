package linux

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/backend"
	"github.com/skillbox-dev/skillbox/internal/cgroup"
	"github.com/skillbox-dev/skillbox/internal/worker"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// errZygoteLost marks a call that got no child from its zygote: nothing of
// the call reached any process, so the pool may retry it on another zygote.
var errZygoteLost = errors.New("the zygote was gone before the call was sent")

// zygoteLog caps the zygote's own stdout and stderr (its load errors).
const zygoteLog = 16 << 10

// zygote is a jail whose pid 1 is the harness in zygote mode: the skill is
// imported once, and every call runs in a fresh fork of it (PROTOCOL.md,
// "Zygote mode"; worker.Zygote speaks it). One call at a time.
type zygote struct {
	b *box
	j *jailProc

	mu     sync.Mutex // held for a call (and its cleanup) or a pre-fork
	nextID uint64
	pre    *worker.ZygoteChild // a child waiting for its call
	// preCounters are the cgroup's counters from before pre was forked: a
	// limit its import ran into counts against its call.
	preCounters cgroup.Counts
	// prePeak meters the jail's peak memory from just before pre was
	// forked: its call's Usage.MaxRSS.
	prePeak *cgroup.PeakMeter
	// broken says the zygote must not be used again; lastUsed is when it
	// last finished a call (unix nanoseconds). Both are read by the pool
	// without z.mu, which a call's background cleanup may hold.
	broken   atomic.Bool
	lastUsed atomic.Int64
}

// startZygote starts a jail with the harness in zygote mode and waits for
// ready (the skill imported).
func (b *box) startZygote(ctx context.Context) (*zygote, error) {
	// The zygote outlives the call that started it.
	j, err := b.startJail(context.WithoutCancel(ctx), true, true, zygoteLog)
	if err != nil {
		return nil, err
	}
	ictx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := b.initWorker(ictx, j.Process, b.initMsg(worker.ModeZygote)); err != nil {
		// A warm zygote imported the skill: what it printed is the skill's.
		err = j.loadFailed(ctx, b.startLimit(j.cg, err))
		j.destroy()
		return nil, err
	}
	z := &zygote{b: b, j: j}
	z.lastUsed.Store(time.Now().UnixNano())
	if !b.spec.Warm {
		// The zygote never imports the skill: its first child does, now,
		// so that a skill that cannot load fails here as it always did,
		// with the requirements report. That child serves the first call.
		peak := cgroup.StartPeak(j.cg)
		c, err := z.fork(ictx)
		if err == nil {
			_, err = c.Ready(ictx)
			err = b.checkReady(c.ReadyReply(), err)
		}
		if err != nil {
			peak.Close()
			err = b.startLimit(j.cg, err)
			if c != nil {
				// A child that failed to import the skill has exited.
				err = backend.LoadFailed(ctx, err, c.WaitOutput, c.Stdout, c.Stderr)
				c.Close()
			}
			j.destroy()
			if ictx.Err() != nil && ctx.Err() == nil {
				return nil, errdefs.WithOutputOf(b.judge.TimeoutErr(ictx), err)
			}
			return nil, err
		}
		z.pre, z.prePeak = c, peak
		if b.d.opts.NoPrefork {
			// No child waits between calls: this one only checked the
			// import. Its exit must be reported (and cleaned up after)
			// before the zygote forks again.
			z.pre, z.prePeak = nil, nil
			peak.Close()
			c.Close()
			if _, err := c.Wait(ictx); err != nil {
				err = b.startLimit(j.cg, err)
				j.destroy()
				return nil, err
			}
		}
	}
	return z, nil
}

// fork asks the zygote for the next child.
func (z *zygote) fork(ctx context.Context) (*worker.ZygoteChild, error) {
	z.nextID++
	c, err := z.j.Zygote.Fork(ctx, z.nextID, z.b.lim.Stdio)
	if err != nil {
		return nil, err
	}
	c.Conn.SetMaxResult(int(z.b.lim.Output))
	return c, nil
}

// prefork forks the next child while the zygote is idle, so a call finds
// one waiting with the skill imported.
func (z *zygote) prefork() {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.broken.Load() || z.pre != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	z.preCounters = cgroup.Snapshot(z.j.cg)
	peak := cgroup.StartPeak(z.j.cg)
	c, err := z.fork(ctx)
	if err != nil {
		peak.Close()
		z.broken.Store(true)
		return
	}
	z.prePeak = peak
	// The child imports the skill now, before its call (PROTOCOL.md); its
	// answer waits for the call if this runs out first.
	c.Ready(ctx)
	z.pre = c
}

// call runs req in a fresh child of the zygote.
func (z *zygote) call(ctx context.Context, req sandbox.Request) (*sandbox.Result, error) {
	z.mu.Lock()
	cleaning := false // z.mu handed to the background cleanup
	defer func() {
		z.lastUsed.Store(time.Now().UnixNano())
		if !cleaning {
			z.mu.Unlock()
		}
	}()
	z.j.run.BeginCall(ctx)
	defer z.j.run.EndCall()
	b := z.b
	// The limit counters a failure is judged by: from before the child
	// was forked (a pre-forked child's, read then, off the call's path).
	c, peak := z.pre, z.prePeak
	z.pre, z.prePeak = nil, nil
	var before cgroup.Counts
	if c != nil {
		before = z.preCounters
	} else {
		before = cgroup.Snapshot(z.j.cg)
		peak = cgroup.StartPeak(z.j.cg)
	}
	defer peak.Close()
	if c != nil && !z.usable() {
		// Died while idle (killed from outside: the OOM killer, an
		// operator), and its pre-forked child with it.
		c.Close()
		z.breakJail()
		return nil, errdefs.Wrap(errdefs.Internal, errZygoteLost, "zygote")
	}
	if c == nil {
		var err error
		if c, err = z.fork(ctx); err != nil {
			z.breakJail()
			if ctx.Err() != nil {
				return nil, b.judge.TimeoutErr(ctx)
			}
			if lerr := b.judge.LimitHit(z.j.cg, before); lerr != nil {
				return nil, lerr
			}
			return nil, errdefs.Wrap(errdefs.Internal, fmt.Errorf("%w: %w", errZygoteLost, err), "zygote")
		}
	}
	// The child imports the skill before its call (a pre-forked one has
	// usually done so already); a skill that fails to import fails here.
	var value json.RawMessage
	_, err := c.Ready(ctx)
	if errors.Is(err, worker.ErrZygoteGone) {
		// Killed from outside while idle, its pre-forked child with it;
		// the call's params were never sent.
		c.Close()
		z.breakJail()
		return nil, errdefs.Wrap(errdefs.Internal, fmt.Errorf("%w: %w", errZygoteLost, err), "zygote")
	}
	if err == nil {
		value, err = c.Call(ctx, req.Params, req.Config)
	}
	if err != nil && backend.CallTimedOut(ctx, err) {
		// Past the deadline: the child may spin forever. Killing pid 1
		// kills the whole jail; the pool replaces the zygote.
		z.breakJail()
		c.Close()
		return backend.PrintedBefore(ctx, c.WaitOutput, c.Stdout, c.Stderr), b.judge.TimeoutErr(ctx)
	}
	var le *worker.LoadError
	if err != nil && c.Conn.Broken() && !exited(err) && !errors.As(err, &le) {
		// A frame we refused: the child is hostile and may go on writing
		// for as long as it likes. Only killing the jail stops it.
		z.breakJail()
		c.Close()
		return nil, b.judge.CallError(ctx, err, z.j.cg, before)
	}
	if err == nil && c.WaitOutput(ctx) == nil {
		// The result is complete once the child's output is (the harness
		// ends it before replying): return it now. The zygote's cleanup
		// (killing what the call left behind, emptying /scratch) finishes
		// in the background, holding z.mu so that no pre-fork or call uses
		// the zygote before it reports the child reaped.
		res := z.result(value, c, peak)
		cleaning = true
		go func() {
			defer z.mu.Unlock()
			z.awaitCleanup(context.WithoutCancel(ctx), c)
		}()
		return res, nil
	}
	z.awaitCleanup(ctx, c)
	if err != nil {
		err = b.judge.CallError(ctx, err, z.j.cg, before)
		return backend.PrintedBefore(ctx, c.WaitOutput, c.Stdout, c.Stderr), err
	}
	return z.result(value, c, peak), nil
}

// result is the call's result; it ran warm when the zygote imported the
// skill. Its MaxRSS is the jail's peak since peak started (before the
// call's child was forked), not since the jail started: 0 where that
// cannot be metered.
func (z *zygote) result(value json.RawMessage, c *worker.ZygoteChild, peak *cgroup.PeakMeter) *sandbox.Result {
	res := result(value, c.Stdout, c.Stderr, peak.Read())
	res.Warm = z.b.spec.Warm
	return res
}

// childExitGrace is how long a call's processes may live on once its child
// replied (or died) and its output ended: a harness child exits well under
// a millisecond after its reply, and its zygote kills what it left behind
// in a few more. A process still there after it runs code the skill
// controls (a patched harness, docs/RATIONALE.md, "Walls between calls"),
// and the jail is killed.
const childExitGrace = 100 * time.Millisecond

// awaitCleanup waits until the zygote reports c reaped, which it does once
// it killed every other process of the call and emptied the scratch; a
// zygote that does not is broken. So is one that still has a process of
// the call childExitGrace after the call ended: a slow cleanup (emptying a
// large scratch) runs the zygote's code only and is waited for. z.mu is
// held.
func (z *zygote) awaitCleanup(ctx context.Context, c *worker.ZygoteChild) {
	// Allow cleanup some slack even when the call's deadline is near.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	gctx, gcancel := context.WithTimeout(wctx, childExitGrace)
	_, werr := c.Wait(gctx)
	gcancel()
	if werr != nil && wctx.Err() == nil && errors.Is(gctx.Err(), context.DeadlineExceeded) {
		if hasChildren(z.j.Cmd.Process.Pid) {
			werr = errCallLingers
		} else {
			_, werr = c.Wait(wctx)
		}
	}
	if werr != nil {
		z.breakJail()
		c.Close()
	}
}

// errCallLingers says a process of the call outlived its grace.
var errCallLingers = errors.New("a process of the call still runs after its end")

// hasChildren reports whether the process pid has a child process not yet
// reaped, running or a zombie (the kernel's list of each of its threads'
// children). As pid 1 of
// the jail, a zygote's children are its call's processes: the child and
// what it left behind, re-parented to it. It reports true when the list
// cannot be read (the zygote is gone, or the kernel lacks
// CONFIG_PROC_CHILDREN): a jail is then killed rather than trusted.
func hasChildren(pid int) bool {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return true
	}
	for _, t := range tasks {
		b, err := os.ReadFile(dir + "/" + t.Name() + "/children")
		if err != nil || len(bytes.TrimSpace(b)) > 0 {
			return true
		}
	}
	return false
}

// exited reports whether err says the call's child is gone.
func exited(err error) bool {
	var se *errdefs.SkillError
	return errors.As(err, &se) && se.Type == worker.TypeWorkerExited
}

// breakJail marks the zygote unusable and kills its jail. z.mu is held.
func (z *zygote) breakJail() {
	z.broken.Store(true)
	z.j.Kill()
}

// usable reports whether the zygote can take another call.
func (z *zygote) usable() bool {
	return !z.broken.Load() && !z.j.Exited() && z.j.Zygote.Err() == nil
}

// destroy kills the zygote's jail and releases everything it holds.
func (z *zygote) destroy() {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.broken.Store(true)
	if z.pre != nil {
		z.pre.Close()
		z.pre = nil
	}
	z.prePeak.Close()
	z.prePeak = nil
	z.j.destroy()
}

// lastUsedAt returns when the zygote last finished a call.
func (z *zygote) lastUsedAt() time.Time {
	return time.Unix(0, z.lastUsed.Load())
}
