//go:build linux

package linux

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// TestOneShot: a one-shot Spec (the CLI's run) starts nothing ahead of
// its call — no zygote, so no pre-imported interpreter and no pre-forked
// child — and runs the call in a new jail of its own.
func TestOneShot(t *testing.T) {
	sb := openBox(t, Options{}, sandbox.Spec{BundleDir: bundle(t, `        return {"pid": os.getpid()}`), OneShot: true})
	if _, ok := sb.(*box).run.(*cold); !ok {
		t.Fatalf("one-shot sandbox runs calls with %T, want a new jail per call", sb.(*box).run)
	}
	res, err := call(t, sb, map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	// The harness is the jail's pid 1: no zygote forked it.
	if pid := value(t, res)["pid"]; pid != float64(1) {
		t.Errorf("the call ran as pid %v of its jail, want 1 (its own jail)", pid)
	}

	// Nothing of the skill runs at Open: a skill that cannot be imported
	// fails its call, as a load error.
	broken := bundle(t, "")
	sb = openBox(t, Options{}, sandbox.Spec{BundleDir: broken, OneShot: true})
	if _, err := sb.Call(context.Background(), sandbox.Request{Params: []byte(`{}`)}); errdefs.KindOf(err) != errdefs.Skill {
		t.Errorf("call of a skill that does not import: %v (kind %s), want a skill error", err, errdefs.KindOf(err))
	}
}

// TestOneShotWarm: a warm skill (the operator's opt-in) keeps its zygote
// in a one-shot sandbox, so its call still runs warm, but no child is
// pre-forked after the call: there is no next call.
func TestOneShotWarm(t *testing.T) {
	sb := openBox(t, Options{}, sandbox.Spec{BundleDir: bundle(t, `        return {}`), OneShot: true, Warm: true})
	p, ok := sb.(*box).run.(*pool)
	if !ok {
		t.Fatalf("warm one-shot sandbox runs calls with %T, want its zygote pool", sb.(*box).run)
	}
	res, err := call(t, sb, map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Warm {
		t.Error("the warm skill's call did not run warm")
	}
	p.mu.Lock()
	zs := make([]*zygote, 0, len(p.all))
	for z := range p.all {
		zs = append(zs, z)
	}
	p.mu.Unlock()
	if len(zs) != 1 {
		t.Fatalf("%d zygotes, want 1", len(zs))
	}
	// A pre-fork would start once the call's cleanup let go of the zygote;
	// watch for one well past that (a bound against hanging, not a speed).
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		zs[0].mu.Lock()
		pre := zs[0].pre
		zs[0].mu.Unlock()
		if pre != nil {
			t.Fatal("a child was pre-forked after the one-shot call")
		}
	}
}

// TestLoadTimeoutKeepsOutput: a skill whose import does not finish before
// the caller's deadline fails with a timeout that carries what it printed
// while it was imported: in its call (one-shot: a new jail) and in Open
// (exec: auto starts a spare, which imports the skill, before the first
// call).
func TestLoadTimeoutKeepsOutput(t *testing.T) {
	requireRoot(t)
	dir := bundle(t, `        return {}`)
	src := "import sys, time\nprint('import-out 3f0a', flush=True)\nsys.stderr.write('import-err 3f0a\\n')\nsys.stderr.flush()\ntime.sleep(60)\n"
	if err := os.WriteFile(filepath.Join(dir, "skill.py"), []byte(src+skillSrc(`        return {}`)), 0o644); err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, err error, start time.Time) {
		t.Helper()
		if errdefs.KindOf(err) != errdefs.Timeout {
			t.Fatalf("%v (kind %s), want a timeout", err, errdefs.KindOf(err))
		}
		if el := time.Since(start); el > 20*time.Second {
			t.Errorf("returned after %v", el)
		}
		if stdout, stderr := errdefs.Output(err); string(stdout) != "import-out 3f0a\n" || string(stderr) != "import-err 3f0a\n" {
			t.Errorf("the timeout's output: stdout %q stderr %q, want what the import printed", stdout, stderr)
		}
	}
	t.Run("one-shot", func(t *testing.T) {
		sb := openBox(t, Options{}, sandbox.Spec{BundleDir: dir, OneShot: true})
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		start := time.Now()
		_, err := sb.Call(ctx, sandbox.Request{Params: []byte(`{}`)})
		check(t, err, start)
	})
	t.Run("auto", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		start := time.Now()
		sb, err := New(Options{}).Open(ctx, sandbox.Spec{SkillID: "test/skill", BundleDir: dir})
		if err == nil {
			sb.Close()
		}
		check(t, err, start)
	})
}
