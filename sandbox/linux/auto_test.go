//go:build linux

package linux

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/sandbox"
)

// TestAuto: exec auto (the default) runs a call on a ready spare, pid 1 of
// a jail of its own; a call that finds none ready is forked from a zygote
// started for it; while a zygote lives no spare starts, and calls keep
// going to the zygote; once the zygotes have idled out, a spare is started
// again and takes the next call. Every call, whichever path, runs in a
// fresh interpreter that nothing earlier touched.
func TestAuto(t *testing.T) {
	sb := openBox(t, Options{MinIdle: 1, PoolSize: 2, IdleTimeout: 5 * time.Second},
		sandbox.Spec{BundleDir: prestartBundle(t)})
	a, ok := sb.(*box).run.(*auto)
	if !ok {
		t.Fatalf("the default exec ran %T, want auto", sb.(*box).run)
	}
	if n := spares(a.spares); n != 1 || !a.zygotes.empty() {
		t.Fatalf("after Open: %d spares and zygotes: %v; want MinIdle 1 spare and no zygote", n, !a.zygotes.empty())
	}
	ready := func() bool { a.spares.mu.Lock(); defer a.spares.mu.Unlock(); return len(a.spares.ready) == 1 }
	tokens := map[string]bool{}
	served := func(what string) map[string]any {
		t.Helper()
		res, err := call(t, sb, nil)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		v := value(t, res)
		tok, _ := v["token"].(string)
		if v["calls"] != float64(1) || v["left"] != false || tokens[tok] {
			t.Errorf("%s: %v; want a fresh interpreter (calls 1, a new token) and no file left by an earlier call", what, v)
		}
		tokens[tok] = true
		return v
	}
	// paused: no spare is ready or starting while a zygote lives.
	paused := func(when string) {
		t.Helper()
		if n := spares(a.spares); n > 0 && !a.zygotes.empty() {
			t.Errorf("%s: %d spares ready or starting beside a zygote", when, n)
		}
	}

	if v := served("a call with a spare ready"); v["pid"] != float64(1) {
		t.Errorf("a call with a spare ready ran as pid %v, want 1 (the spare, a jail of its own)", v["pid"])
	}
	if !a.zygotes.empty() {
		t.Error("a call on a spare started a zygote")
	}

	// A call that finds no spare ready (taken by hand, as a call just
	// before would have) goes to a zygote started for it.
	waitFor(t, "a ready spare after a call", ready)
	a.spares.tryTake().destroy()
	if v := served("a call with no spare ready"); v["pid"] == float64(1) {
		t.Errorf("a call with no spare ready ran as pid 1, want a zygote's child")
	}
	if a.zygotes.empty() {
		t.Fatal("a call with no spare ready left no zygote")
	}
	// The reaper ticks (every second here) without starting a spare; the
	// zygote, idle for less than IdleTimeout, stays.
	time.Sleep(1200 * time.Millisecond)
	paused("1.2 s after a zygote's call")
	if v := served("a call while the zygote lives"); v["pid"] == float64(1) {
		t.Errorf("a call while the zygote lives ran as pid 1, want the zygote's child")
	}
	paused("after the zygote's second call")

	waitFor(t, "the zygote idled out and a spare ready again", func() bool { return a.zygotes.empty() && ready() })
	if v := served("a call once the zygote is gone"); v["pid"] != float64(1) {
		t.Errorf("a call once the zygote is gone ran as pid %v, want 1 (a spare)", v["pid"])
	}

	// Calls at once: one may take the spare, the rest are forked.
	waitFor(t, "a ready spare", ready)
	var wg sync.WaitGroup
	var mu sync.Mutex
	results := make([]map[string]any, 0, 4)
	for range 4 {
		wg.Go(func() {
			res, err := call(t, sb, nil)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			results = append(results, value(t, res))
			mu.Unlock()
		})
	}
	wg.Wait()
	for _, v := range results {
		tok, _ := v["token"].(string)
		if v["calls"] != float64(1) || v["left"] != false || tokens[tok] {
			t.Errorf("a call of 4 at once: %v; want a fresh interpreter", v)
		}
		tokens[tok] = true
	}
}

// TestAutoBurst: a call that comes while the previous call's spare is
// being replaced waits for that spare rather than for a zygote's start,
// and a zygote starts beside it, which serves the call after. The skill's
// import takes 0.5 s here, so that the replacement is still starting when
// the second call comes.
func TestAutoBurst(t *testing.T) {
	dir := prestartBundle(t)
	src, err := os.ReadFile(filepath.Join(dir, "skill.py"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "skill.py"), append([]byte("import time; time.sleep(0.5)\n"), src...), 0o644); err != nil {
		t.Fatal(err)
	}
	sb := openBox(t, Options{MinIdle: 1, PoolSize: 2, IdleTimeout: time.Minute}, sandbox.Spec{BundleDir: dir})
	a := sb.(*box).run.(*auto)
	pid := func(what string) any {
		t.Helper()
		res, err := call(t, sb, nil)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		v := value(t, res)
		if v["calls"] != float64(1) || v["left"] != false {
			t.Errorf("%s: %v; want a fresh interpreter", what, v)
		}
		return v["pid"]
	}
	if p := pid("the first call"); p != float64(1) {
		t.Fatalf("the first call ran as pid %v, want 1 (the spare Open started)", p)
	}
	waitFor(t, "the spare's replacement starting", func() bool {
		a.spares.mu.Lock()
		defer a.spares.mu.Unlock()
		return a.spares.starting == 1
	})
	if p := pid("a call while the replacement starts"); p != float64(1) {
		t.Errorf("a call while the replacement starts ran as pid %v, want 1: it waits for that spare", p)
	}
	if a.zygotes.empty() {
		t.Fatal("no zygote started beside the spare the call waited for")
	}
	if p := pid("the call after"); p == float64(1) {
		t.Error("the call after ran on a spare, want the zygote started for it")
	}
	a.zygotes.mu.Lock()
	n := len(a.zygotes.all)
	a.zygotes.mu.Unlock()
	if n != 1 {
		t.Errorf("%d zygotes, want the one started ahead (the call after waits for it rather than starting another)", n)
	}
}
