//go:build linux

package linux

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// prestartSkill is imported once per jail: what it returns says which
// interpreter served the call, when that interpreter imported the skill,
// and what an earlier call left behind.
const prestartSkill = `        import time
        global CALLS
        CALLS += 1
        left = os.path.exists("/scratch/left-behind")
        open("/scratch/left-behind", "w").write("x")
        return {"token": TOKEN, "imported_at": IMPORTED_AT, "calls": CALLS, "pid": os.getpid(), "left": left}`

func prestartBundle(t *testing.T) string {
	dir := bundle(t, prestartSkill)
	src, err := os.ReadFile(filepath.Join(dir, "skill.py"))
	if err != nil {
		t.Fatal(err)
	}
	head := "import os, time\nTOKEN = os.urandom(8).hex()\nIMPORTED_AT = time.time()\nCALLS = 0\n"
	if err := os.WriteFile(filepath.Join(dir, "skill.py"), append([]byte(head), src...), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// spares counts a prestart sandbox's spares, ready and starting.
func spares(p *prestart) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.ready) + p.starting
}

// TestPrestart: every call runs in a fresh interpreter, pid 1 of a jail
// of its own, that imported the skill before the call was made; nothing a
// call leaves (module state, files in /scratch) reaches the next; and a
// spare waits again after each call.
func TestPrestart(t *testing.T) {
	sb := openBox(t, Options{Exec: ExecPrestart, MinIdle: 1, PoolSize: 2}, sandbox.Spec{BundleDir: prestartBundle(t)})
	p, ok := sb.(*box).run.(*prestart)
	if !ok {
		t.Fatalf("Exec prestart ran %T", sb.(*box).run)
	}
	if n := spares(p); n != 1 {
		t.Fatalf("after Open: %d spares, want MinIdle 1", n)
	}
	tokens := map[string]bool{}
	for i := range 3 {
		waitFor(t, "a ready spare", func() bool { p.mu.Lock(); defer p.mu.Unlock(); return len(p.ready) == 1 })
		asked := float64(time.Now().UnixNano()) / 1e9
		res, err := call(t, sb, nil)
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		v := value(t, res)
		if v["calls"] != float64(1) || v["left"] != false || v["pid"] != float64(1) {
			t.Errorf("call %d: %v; want a fresh interpreter (calls 1), pid 1 of its own jail, no file left by an earlier call", i, v)
		}
		if at := v["imported_at"].(float64); at >= asked {
			t.Errorf("call %d: the skill was imported %.3f s after the call was made; want a spare started before it", i, at-asked)
		}
		tok := v["token"].(string)
		if tokens[tok] {
			t.Errorf("call %d: interpreter %s served an earlier call too", i, tok)
		}
		tokens[tok] = true
	}
}

// TestPrestartSpares: calls that outrun the spares make the sandbox keep
// more, up to PoolSize; once no call has found them short for
// IdleTimeout, the surplus is closed down to MinIdle; after ReleaseAfter
// without a call every spare is, and none starts until the next call,
// which does not count as calls outrunning the spares.
func TestPrestartSpares(t *testing.T) {
	sb := openBox(t, Options{Exec: ExecPrestart, MinIdle: 1, PoolSize: 3, IdleTimeout: time.Second, ReleaseAfter: 5 * time.Second},
		sandbox.Spec{BundleDir: bundle(t, `        return {}`)})
	p := sb.(*box).run.(*prestart)
	want := func() int { p.mu.Lock(); defer p.mu.Unlock(); return p.want }
	// Sampled while the calls run: how long they take (a loaded machine)
	// decides when the surplus goes, not how many the sandbox wanted.
	peakWant, peakSpares := 0, 0
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			peakWant, peakSpares = max(peakWant, want()), max(peakSpares, spares(p))
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			if _, err := call(t, sb, nil); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	time.Sleep(50 * time.Millisecond) // the calls' top-ups begin (afterCall)
	close(stop)
	<-stopped
	if peakWant != 3 || peakSpares > 3 {
		t.Errorf("6 calls at once: the sandbox wanted at most %d spares and had %d; want PoolSize 3, and no more", peakWant, peakSpares)
	}
	waitFor(t, "the surplus closed down to MinIdle", func() bool { return want() == 1 && spares(p) == 1 })
	waitFor(t, "every spare released", func() bool { return spares(p) == 0 })
	time.Sleep(time.Second) // reaper ticks: none starts while nobody calls
	if n := spares(p); n != 0 {
		t.Fatalf("%d spares started while nobody called", n)
	}
	if _, err := call(t, sb, nil); err != nil {
		t.Fatalf("call after the release: %v", err)
	}
	waitFor(t, "MinIdle spare after a call", func() bool { return spares(p) == 1 })
	if w := want(); w != 1 {
		t.Errorf("after the release and one call: want %d spares, want MinIdle 1", w)
	}
}

// TestPrestartDeadSpare: a spare killed while it waits (the OOM killer,
// an operator) is not the call's failure: the call never reached it.
func TestPrestartDeadSpare(t *testing.T) {
	sb := openBox(t, Options{Exec: ExecPrestart}, sandbox.Spec{BundleDir: bundle(t, `        return {"ok": 1}`)})
	p := sb.(*box).run.(*prestart)
	for i := range 2 {
		waitFor(t, "a ready spare", func() bool { p.mu.Lock(); defer p.mu.Unlock(); return len(p.ready) == 1 })
		p.mu.Lock()
		j := p.ready[0]
		p.mu.Unlock()
		j.Kill()
		waitFor(t, "the spare dead", j.Exited)
		if _, err := call(t, sb, nil); err != nil {
			t.Fatalf("call %d after its spare was killed: %v", i, err)
		}
	}
}

// TestPrestartLoadError: a skill that cannot be imported fails Open, as
// with a zygote, and a call that has to start its own jail reports it.
func TestPrestartLoadError(t *testing.T) {
	requireRoot(t)
	dir := bundle(t, `        return {}`)
	if err := os.WriteFile(filepath.Join(dir, "skill.py"), []byte("raise RuntimeError('no import for you')\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := New(Options{Exec: ExecPrestart}).Open(context.Background(), sandbox.Spec{BundleDir: dir, SkillID: "test/skill"})
	if errdefs.KindOf(err) != errdefs.Skill {
		t.Fatalf("Open of a skill that fails to import: %v; want a skill error", err)
	}
	sb, err := New(Options{Exec: ExecPrestart, MinIdle: -1}).Open(context.Background(), sandbox.Spec{BundleDir: dir, SkillID: "test/skill"})
	if err != nil {
		t.Fatalf("Open with no spare to start: %v", err)
	}
	defer sb.Close()
	if _, err := call(t, sb, nil); errdefs.KindOf(err) != errdefs.Skill {
		t.Fatalf("call of a skill that fails to import: %v; want a skill error", err)
	}
}

// TestCloseEndsHangingSpareStart: Close does not wait out the start bound
// (timeout + start allowance) of a spare whose import never ends; it ends
// that start. The skill's import hangs once a host file the test creates
// after the first spare exists (a granted read path) is there.
func TestCloseEndsHangingSpareStart(t *testing.T) {
	requireRoot(t)
	dir, flagDir, hang := hangingImport(t)
	d := New(Options{Exec: ExecPrestart})
	sb, err := d.Open(context.Background(), sandbox.Spec{SkillID: "test/skill", BundleDir: dir, ReadPaths: []string{flagDir}})
	if err != nil {
		t.Fatal(err)
	}
	hang()
	// The call takes the ready spare; the one started after it hangs.
	if _, err := call(t, sb, map[string]any{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	closesSoon(t, sb, "the hanging spare's start")
}
