//go:build linux

package linux

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// TestPool checks the zygote pool's bounds: concurrent calls never start
// more than PoolSize zygotes, surplus idle zygotes are reaped down to
// MinIdle, and a zygote that dies is replaced before the next call.
func TestPool(t *testing.T) {
	sb := openBox(t, Options{Exec: ExecZygote, PoolSize: 2, MinIdle: 1, IdleTimeout: 300 * time.Millisecond},
		sandbox.Spec{BundleDir: bundle(t, `        import time
        time.sleep(params.get("sleep", 0))
        return {}`)})
	p := sb.(*box).run.(*pool)
	count := func() int { p.mu.Lock(); defer p.mu.Unlock(); return len(p.all) + p.starting }
	var wg sync.WaitGroup
	peak := 0
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				peak = max(peak, count())
			}
		}
	}()
	for range 6 {
		wg.Go(func() {
			if _, err := call(t, sb, map[string]any{"sleep": 0.2}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	close(stop)
	<-stopped
	// PoolSize bounds the zygotes, those the reaper starts included.
	if peak > 2 || count() > 2 {
		t.Errorf("zygotes: peak %d, now %d; want at most PoolSize 2", peak, count())
	}
	waitFor(t, "idle zygotes reaped to MinIdle", func() bool { return count() == 1 })

	dead := killZygote(p)
	waitFor(t, "dead zygote replaced", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.all) == 1 && !p.all[dead] && len(p.idle) == 1 && p.idle[0].usable()
	})
	if _, err := sb.Call(context.Background(), sandbox.Request{}); err != nil {
		t.Errorf("call after replacement: %v", err)
	}
}

// TestPoolRelease: a sandbox with no call for ReleaseAfter closes every
// zygote, the MinIdle one too, starts none while nobody calls, and the
// next call starts one again (and MinIdle is kept from then on).
func TestPoolRelease(t *testing.T) {
	sb := openBox(t, Options{Exec: ExecZygote, PoolSize: 2, MinIdle: 1, IdleTimeout: 200 * time.Millisecond, ReleaseAfter: 500 * time.Millisecond},
		sandbox.Spec{BundleDir: bundle(t, `        return {"ok": 1}`)})
	p := sb.(*box).run.(*pool)
	count := func() int { p.mu.Lock(); defer p.mu.Unlock(); return len(p.all) + p.starting }
	if _, err := call(t, sb, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every zygote released", func() bool { return count() == 0 })
	// Several reaper ticks later (IdleTimeout/2 each), none was started.
	time.Sleep(time.Second)
	if n := count(); n != 0 {
		t.Fatalf("%d zygotes started while nobody called", n)
	}
	if _, err := call(t, sb, nil); err != nil {
		t.Fatalf("call after the release: %v", err)
	}
	if n := count(); n != 1 {
		t.Errorf("after a call: %d zygotes, want MinIdle 1", n)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	// A hang guard, generous: a zygote's start on a loaded machine under
	// -race can take seconds.
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
	}
}

// TestZygoteSurvivesSignals: a call child sends every catchable signal to
// its zygote (pid 1 of the jail, and its parent); the zygote must neither
// die nor be replaced, and serves the next call.
func TestZygoteSurvivesSignals(t *testing.T) {
	sb := openBox(t, Options{Exec: ExecZygote, PoolSize: 1, MinIdle: 1}, sandbox.Spec{BundleDir: bundle(t, `        import os, signal
        sent = []
        for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2",
                     "SIGALRM", "SIGPIPE", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGCHLD"):
            for pid in {1, os.getppid()}:
                os.kill(pid, getattr(signal, name))
                sent.append(name)
        import time
        time.sleep(0.05)
        return {"sent": len(sent)}`)})
	p := sb.(*box).run.(*pool)
	zygotes := func() []*zygote {
		p.mu.Lock()
		defer p.mu.Unlock()
		var out []*zygote
		for z := range p.all {
			out = append(out, z)
		}
		return out
	}
	before := zygotes()
	if len(before) != 1 {
		t.Fatalf("want 1 warm zygote, have %d", len(before))
	}
	for i := range 3 {
		if _, err := sb.Call(context.Background(), sandbox.Request{}); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	// Let a killed zygote be noticed before looking.
	time.Sleep(100 * time.Millisecond)
	after := zygotes()
	if len(after) != 1 || after[0] != before[0] || !after[0].usable() {
		t.Errorf("the zygote did not survive its children's signals (before %p, after %v, usable %v)",
			before[0], after, len(after) == 1 && after[0].usable())
	}
}

// TestStartOutsideCallTimeout: when the call's zygote must be started anew
// (its predecessor was killed), the start does not count against the
// call's timeout, which is the skill's; a start slower than the timeout
// plus startAllowance is a timeout that says the skill was not called.
func TestStartOutsideCallTimeout(t *testing.T) {
	dir := bundle(t, `        return {"ok": True}`)
	// The skill's import takes longer than its call's timeout.
	src, _ := os.ReadFile(filepath.Join(dir, "skill.py"))
	os.WriteFile(filepath.Join(dir, "skill.py"), append([]byte("import time\ntime.sleep(2.5)\n"), src...), 0o644)
	opts := Options{Exec: ExecZygote, PoolSize: 1, MinIdle: 1}
	spec := sandbox.Spec{BundleDir: dir, Limits: sandbox.Limits{Timeout: time.Second}}
	sb := openBox(t, opts, spec)
	p := sb.(*box).run.(*pool)
	// Open warmed one zygote and the reaper, ticking meanwhile, must not
	// have started another beyond PoolSize 1.
	p.mu.Lock()
	if n := len(p.all) + p.starting; n != 1 {
		t.Errorf("after Open: %d zygotes, want PoolSize 1", n)
	}
	p.mu.Unlock()
	// As a hostile call's breakJail does: the zygote is killed and known
	// unusable before the next call.
	kill := func(p *pool) {
		p.mu.Lock()
		for z := range p.all {
			z.breakJail()
		}
		p.mu.Unlock()
	}
	if _, err := sb.Call(context.Background(), sandbox.Request{}); err != nil {
		t.Fatalf("warm call: %v", err)
	}
	kill(p)
	start := time.Now()
	if _, err := sb.Call(context.Background(), sandbox.Request{}); err != nil {
		t.Fatalf("call that had to start a zygote (%v): %v", time.Since(start), err)
	}
	if d := time.Since(start); d < 2*time.Second {
		t.Errorf("the call took %v: it did not start its zygote (a 2.5 s import)", d)
	}
	// The same with no allowance: Open still warms a zygote (its start is
	// bounded apart), but a call that must start one runs out of time.
	spec.SkillID = "test/skill"
	sb, err := newTestDriver(opts, testSeams{noStartAllowance: true}).Open(context.Background(), spec)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer sb.Close()
	kill(sb.(*box).run.(*pool))
	_, err = sb.Call(context.Background(), sandbox.Request{})
	if errdefs.KindOf(err) != errdefs.Timeout || !strings.Contains(err.Error(), "no sandbox was ready") {
		t.Fatalf("start beyond its allowance: %v; want a timeout saying no sandbox was ready", err)
	}
}

// TestZygoteLostIsRetried: a zygote killed from outside (not by a call:
// the OOM killer, an operator) just before a call is not the call's
// failure: the call never reached it, and runs on a new zygote.
func TestZygoteLostIsRetried(t *testing.T) {
	sb := openBox(t, Options{Exec: ExecZygote, PoolSize: 1, MinIdle: 1, NoPrefork: true}, sandbox.Spec{BundleDir: bundle(t, `        return {"pid": os.getpid()}`)})
	p := sb.(*box).run.(*pool)
	for i := range 3 {
		p.mu.Lock()
		for z := range p.all {
			z.j.Kill() // unlike breakJail, the pool does not know yet
		}
		p.mu.Unlock()
		if _, err := sb.Call(context.Background(), sandbox.Request{}); err != nil {
			t.Fatalf("call %d after its zygote was killed: %v", i, err)
		}
	}
}

// TestPoolCloseEndsHangingStart: Close does not wait out a zygote start
// the reaper began in the background (here, replacing a dead zygote of a
// warm skill whose import now hangs): it ends the start, whose own bound
// is the skill's timeout plus the start allowance (45 s here).
func TestPoolCloseEndsHangingStart(t *testing.T) {
	requireRoot(t)
	dir, flagDir, hang := hangingImport(t)
	d := New(Options{Exec: ExecZygote, PoolSize: 2, MinIdle: 1})
	sb, err := d.Open(context.Background(), sandbox.Spec{SkillID: "test/skill", BundleDir: dir, ReadPaths: []string{flagDir}, Warm: true})
	if err != nil {
		t.Fatal(err)
	}
	p := sb.(*box).run.(*pool)
	hang()
	dead := killZygote(p)
	waitFor(t, "the reaper starting a replacement", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return !p.all[dead] && p.starting == 1
	})
	time.Sleep(time.Second) // well into the replacement's import
	closesSoon(t, sb, "the hanging zygote start")
}

// killZygote kills one of p's zygotes and returns it.
func killZygote(p *pool) *zygote {
	p.mu.Lock()
	var dead *zygote
	for z := range p.all {
		dead = z
		break
	}
	p.mu.Unlock()
	dead.j.Kill()
	return dead
}
