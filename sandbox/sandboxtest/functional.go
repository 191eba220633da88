package sandboxtest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/backend"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// fixedEnv are variables a backend may set itself (DESIGN: PATH, HOME,
// LANG, ...); equal values on host and jail are not a leak for these.
var fixedEnv = map[string]bool{
	"PATH": true, "HOME": true, "LANG": true, "LC_ALL": true, "LC_CTYPE": true, "TMPDIR": true,
	"TERM": true, "PWD": true, "USER": true, "LOGNAME": true, "SHELL": true, "TZ": true, "SHLVL": true,
	"PYTHONUNBUFFERED": true, "PYTHONIOENCODING": true, "PYTHONDONTWRITEBYTECODE": true,
	"PYTHONHASHSEED": true, "PYTHONNOUSERSITE": true, "PYTHONSAFEPATH": true, "_": true,
}

// RunFunctional runs the call-contract tests: results, skill errors,
// limits, captured output and state between calls.
func RunFunctional(t *testing.T, d sandbox.Driver, opts Options) {
	lim := opts.limits()
	open := func(t *testing.T, skill string, edit ...func(*sandbox.Spec)) sandbox.Sandbox {
		spec := SpecFor(FunctionalSkill(t, skill), opts)
		for _, e := range edit {
			e(&spec)
		}
		return Open(t, d, spec)
	}
	needs := func(t *testing.T, f sandbox.Feature) {
		if !opts.Has(f) {
			t.Skipf("driver %s does not claim %s", d.Name(), f)
		}
	}

	t.Run("Hello", func(t *testing.T) {
		sb := open(t, "hello")
		res, err, _ := Call(t, sb, opts, map[string]any{}, nil)
		var got map[string]any
		MustResult(t, res, err, &got)
		if diff := cmp.Diff(map[string]any{"hello": "world"}, got); diff != "" {
			t.Errorf("result (-want +got):\n%s", diff)
		}
	})

	t.Run("ParamsRoundTrip", func(t *testing.T) {
		sb := open(t, "echo")
		params := map[string]any{
			"s": "héllo \u2603 \"quoted\" \\ \n", "n": 42.5, "i": float64(1 << 50), "b": true, "null": nil,
			"list": []any{1.0, "two", []any{3.0}}, "obj": map[string]any{"k": map[string]any{"deep": "v"}},
		}
		res, err, _ := Call(t, sb, opts, params, nil)
		var got struct {
			Params map[string]any `json:"params"`
		}
		MustResult(t, res, err, &got)
		if diff := cmp.Diff(params, got.Params); diff != "" {
			t.Errorf("params (-sent +seen by skill):\n%s", diff)
		}
	})

	t.Run("ConfigAndCredential", func(t *testing.T) {
		sb := open(t, "echo")
		cfg := map[string]string{"API_KEY": "k-123", "OTHER": "o"}
		res, err, _ := Call(t, sb, opts, map[string]any{"credential": "API_KEY"}, cfg)
		var got struct {
			Config     map[string]string `json:"config"`
			Credential *string           `json:"credential"`
		}
		MustResult(t, res, err, &got)
		if diff := cmp.Diff(cfg, got.Config); diff != "" {
			t.Errorf("config (-want +got):\n%s", diff)
		}
		if got.Credential == nil || *got.Credential != "k-123" {
			t.Errorf("credential(API_KEY) = %v, want k-123", got.Credential)
		}
	})

	t.Run("EnvOnlyGranted", func(t *testing.T) {
		needs(t, sandbox.FeatureEnvScrub)
		t.Setenv("SKILLBOX_HOST_ONLY", "host-value-must-not-leak")
		sb := open(t, "echo", func(s *sandbox.Spec) {
			s.Env = map[string]string{"SKILLBOX_GRANTED": "granted-value"}
		})
		res, err, _ := Call(t, sb, opts, map[string]any{"env": []string{"SKILLBOX_GRANTED", "SKILLBOX_HOST_ONLY"}}, nil)
		var got struct {
			Env      map[string]*string `json:"env"`
			EnvNames []string           `json:"env_names"`
		}
		MustResult(t, res, err, &got)
		if v := got.Env["SKILLBOX_GRANTED"]; v == nil || *v != "granted-value" {
			t.Errorf("granted variable SKILLBOX_GRANTED = %v, want granted-value", v)
		}
		if v := got.Env["SKILLBOX_HOST_ONLY"]; v != nil {
			t.Errorf("host variable SKILLBOX_HOST_ONLY leaked into the skill: %q", *v)
		}
		for _, n := range got.EnvNames {
			if _, onHost := os.LookupEnv(n); onHost && !fixedEnv[n] && n != "SKILLBOX_GRANTED" {
				t.Errorf("host variable %s is visible to the skill", n)
			}
		}
	})

	t.Run("Exception", func(t *testing.T) {
		sb := open(t, "raiser")
		res, err, _ := Call(t, sb, opts, map[string]any{"message": "boom-7f3a"}, nil)
		if res != nil && err == nil {
			t.Fatalf("raising skill returned a result: %s", res.Value)
		}
		se := AssertSkillError(t, err, "ValueError")
		if !strings.Contains(se.Message, "boom-7f3a") {
			t.Errorf("message %q does not carry the exception text", se.Message)
		}
		if se.Traceback != "" && !strings.Contains(se.Traceback, "_deep") {
			t.Errorf("traceback does not show the raising frame:\n%s", se.Traceback)
		}
		// What it printed before it raised comes back with the error, and
		// nothing of an earlier call's.
		for _, say := range []string{"first-2c9e", "second-81d0"} {
			res, err, _ = Call(t, sb, opts, map[string]any{"message": "boom", "say": say}, nil)
			AssertSkillError(t, err, "ValueError")
			if res == nil || string(res.Stdout) != "before-raise-out "+say+"\n" || string(res.Stderr) != "before-raise-err "+say+"\n" {
				var out, errOut []byte
				if res != nil {
					out, errOut = res.Stdout, res.Stderr
				}
				t.Errorf("a failed call's output: stdout %q stderr %q, want what the skill printed before it raised", out, errOut)
			}
		}
	})

	t.Run("LoadFailure", func(t *testing.T) {
		// A skill that fails to import fails its call, or Open when the
		// backend imports it ahead of the first call; either way the error
		// is the load error and carries what the skill printed while it
		// was imported, in every mode.
		type kind struct {
			name    string
			mode    sandbox.Mode
			oneShot bool
		}
		kinds := []kind{{"single-use", sandbox.ModeSingleUse, false}, {"one-shot", sandbox.ModeSingleUse, true}}
		if opts.Session {
			kinds = append(kinds, kind{"session", sandbox.ModeSession, false})
		}
		for _, k := range kinds {
			t.Run(k.name, func(t *testing.T) {
				spec := SpecFor(FunctionalSkill(t, "loadfail"), opts)
				spec.Mode, spec.OneShot = k.mode, k.oneShot
				res, err := openAndCall(t, d, spec, opts)
				se := AssertSkillError(t, err, "RuntimeError")
				if !strings.Contains(se.Message, "load-fails-4b1d") {
					t.Errorf("message %q does not carry the load error", se.Message)
				}
				stdout, stderr := printed(res, err)
				if string(stdout) != "import-out 5e1c\n" || string(stderr) != "import-err 5e1c\n" {
					t.Errorf("a failed load's output: stdout %q stderr %q, want what the skill printed while it was imported", stdout, stderr)
				}
			})
		}
	})

	t.Run("ResultNotJSON", func(t *testing.T) {
		sb := open(t, "notjson")
		for _, p := range []map[string]any{{}, {"nan": true}} {
			_, err, _ := Call(t, sb, opts, p, nil)
			AssertSkillError(t, err, "ResultNotJSON")
		}
	})

	t.Run("WorkerExited", func(t *testing.T) {
		sb := open(t, "exiter")
		for _, p := range []map[string]any{{"code": 3}, {"signal": true}} {
			_, err, el := Call(t, sb, opts, p, nil)
			AssertSkillError(t, err, "WorkerExited")
			if el > lim.Timeout {
				t.Errorf("a dead worker was noticed only after %v (timeout %v)", el, lim.Timeout)
			}
		}
		// The sandbox survives a dead worker.
		_, err, _ := Call(t, sb, opts, map[string]any{"code": 0}, nil)
		AssertSkillError(t, err, "WorkerExited")
	})

	t.Run("Timeout", func(t *testing.T) {
		needs(t, sandbox.FeatureTimeout)
		to := time.Second
		sb := open(t, "sleeper", func(s *sandbox.Spec) { s.Limits.Timeout = to })
		_, err, el := Call(t, sb, opts, map[string]any{"seconds": 60}, nil)
		AssertKind(t, err, errdefs.Timeout)
		if el > to+opts.grace() {
			t.Errorf("timeout %v reported after %v", to, el)
		}
		// One wording on every backend.
		if want := backend.TimedOut("sandboxtest/sleeper", to); err != nil && err.Error() != want.Error() {
			t.Errorf("timeout message %q, want %q", err, want)
		}
		// A normal call still works afterwards.
		res, err, _ := Call(t, sb, opts, map[string]any{"seconds": 0}, nil)
		MustResult(t, res, err, nil)
	})

	t.Run("ContextCancel", func(t *testing.T) {
		sb := open(t, "sleeper")
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(300*time.Millisecond, cancel)
		start := time.Now()
		_, err := sb.Call(ctx, sandbox.Request{Params: json.RawMessage(`{"seconds": 60}`)})
		if err == nil {
			t.Fatal("cancelled call returned no error")
		}
		if el := time.Since(start); el > 300*time.Millisecond+opts.grace() {
			t.Errorf("cancelled call returned after %v", el)
		}
	})

	t.Run("OutputCap", func(t *testing.T) {
		needs(t, sandbox.FeatureOutputCap)
		sb := open(t, "bigresult")
		res, err, _ := Call(t, sb, opts, map[string]any{"bytes": lim.Output / 2}, nil)
		MustResult(t, res, err, nil)
		_, err, _ = Call(t, sb, opts, map[string]any{"bytes": lim.Output * 2}, nil)
		AssertLimit(t, err, "output")
	})

	t.Run("StdoutCapture", func(t *testing.T) {
		sb := open(t, "chatty")
		res, err, _ := Call(t, sb, opts, map[string]any{"stdout": "to-stdout\n", "stderr": "to-stderr\n"}, nil)
		MustResult(t, res, err, nil)
		if string(res.Stdout) != "to-stdout\n" || string(res.Stderr) != "to-stderr\n" {
			t.Errorf("stdout %q stderr %q, want %q and %q", res.Stdout, res.Stderr, "to-stdout\n", "to-stderr\n")
		}
		if res.StdoutTruncated || res.StderrTruncated {
			t.Errorf("small output marked truncated")
		}
	})

	t.Run("StdoutTruncated", func(t *testing.T) {
		needs(t, sandbox.FeatureOutputCap)
		sb := open(t, "chatty")
		line := strings.Repeat("o", 1023) + "\n"
		repeat := int(lim.Stdio/1024) * 4
		res, err, _ := Call(t, sb, opts, map[string]any{"stdout": line, "stderr": line, "repeat": repeat}, nil)
		MustResult(t, res, err, nil)
		checkTruncated(t, res, lim.Stdio)
	})

	t.Run("SingleUse", func(t *testing.T) {
		sb := open(t, "counter")
		for i := range 3 {
			res, err, _ := Call(t, sb, opts, map[string]any{}, nil)
			var got struct {
				Count   int  `json:"count"`
				SawMark bool `json:"saw_mark"`
			}
			MustResult(t, res, err, &got)
			if got.Count != 1 || got.SawMark {
				t.Errorf("call %d saw state of an earlier call: count=%d saw_mark=%v", i+1, got.Count, got.SawMark)
			}
		}
	})

	// What a call opens in the caller's process the sandbox closes itself,
	// not the garbage collector: with it off, a sandbox that ran several
	// calls leaves no descriptor behind once closed.
	t.Run("DescriptorsClosed", func(t *testing.T) {
		fds := func() int {
			ents, err := os.ReadDir("/proc/self/fd")
			if err != nil {
				t.Skipf("no /proc/self/fd: %v", err)
			}
			return len(ents)
		}
		defer debug.SetGCPercent(debug.SetGCPercent(-1))
		before := fds()
		sb, err := d.Open(context.Background(), SpecFor(FunctionalSkill(t, "counter"), opts))
		if err != nil {
			t.Fatal(err)
		}
		for range 8 {
			res, err, _ := Call(t, sb, opts, map[string]any{}, nil)
			MustResult(t, res, err, nil)
		}
		if err := sb.Close(); err != nil {
			t.Fatal(err)
		}
		// A backend may end a jail in the background after Close.
		for deadline := time.Now().Add(10 * time.Second); fds() > before; time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("descriptors: %d before Open, %d after 8 calls and Close (garbage collector off)", before, fds())
			}
		}
	})

	t.Run("Session", func(t *testing.T) {
		if !opts.Session {
			t.Skipf("driver %s: session mode not expected", d.Name())
		}
		sb := open(t, "counter", func(s *sandbox.Spec) { s.Mode = sandbox.ModeSession })
		for i := 1; i <= 3; i++ {
			res, err, _ := Call(t, sb, opts, map[string]any{}, nil)
			var got struct {
				Count int `json:"count"`
			}
			MustResult(t, res, err, &got)
			if got.Count != i {
				t.Errorf("session call %d: module counter = %d, want %d", i, got.Count, i)
			}
		}
	})

	// A session's process outlives each call, so its output never ends:
	// each call's result must still hold all that the call printed before
	// it returned, and nothing of another call's.
	t.Run("SessionOutput", func(t *testing.T) {
		if !opts.Session {
			t.Skipf("driver %s: session mode not expected", d.Name())
		}
		sb := open(t, "chatty", func(s *sandbox.Spec) { s.Mode = sandbox.ModeSession })
		const repeat = 400 // 400 lines on each stream per call: several pipe reads
		for i := 1; i <= 6; i++ {
			out, errOut := fmt.Sprintf("call %d out\n", i), fmt.Sprintf("call %d err\n", i)
			res, err, _ := Call(t, sb, opts, map[string]any{"stdout": out, "stderr": errOut, "repeat": repeat}, nil)
			MustResult(t, res, err, nil)
			if want := strings.Repeat(out, repeat); string(res.Stdout) != want {
				t.Errorf("session call %d: stdout has %d bytes (%d lines of its own), want the call's %d: %.60q…",
					i, len(res.Stdout), strings.Count(string(res.Stdout), out), len(want), res.Stdout)
			}
			if want := strings.Repeat(errOut, repeat); string(res.Stderr) != want {
				t.Errorf("session call %d: stderr has %d bytes (%d lines of its own), want the call's %d: %.60q…",
					i, len(res.Stderr), strings.Count(string(res.Stderr), errOut), len(want), res.Stderr)
			}
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		sb := open(t, "echo")
		const n = 8
		// The calls may queue for the backend's workers (and start some):
		// a backend is free to run them one at a time, so the guard
		// against a hang allows each call its own bound, one after the
		// other. One call's bound (Call's) would end the last ones while
		// they legitimately wait for the first ones (pyodide: calls beyond
		// MaxWorkers wait, then start a worker, under load for longer than
		// timeout+grace+5s).
		ctx, cancel := context.WithTimeout(context.Background(), n*callBound(opts))
		defer cancel()
		var wg sync.WaitGroup
		for i := range n {
			params := marshalParams(t, map[string]any{"i": float64(i)})
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, hung := callUnder(ctx, sb, params, nil)
				switch {
				case hung:
					t.Errorf("concurrent call %d did not return %v after its context expired: the backend hangs", i, hangSlack)
					return
				case c.err != nil:
					t.Errorf("concurrent call %d failed after %v: %v", i, c.elapsed, c.err)
					return
				}
				var got struct {
					Params map[string]any `json:"params"`
				}
				if json.Unmarshal(c.res.Value, &got) != nil || got.Params["i"] != float64(i) {
					t.Errorf("concurrent call %d got another call's result: %s", i, c.res.Value)
				}
			}()
		}
		wg.Wait()
	})

	t.Run("RefusesUnenforceable", func(t *testing.T) {
		var missing sandbox.Feature
		for _, f := range sandbox.AllFeatures() {
			if !opts.Has(f) {
				missing = f
				break
			}
		}
		if missing == "" {
			t.Skip("driver claims every feature")
		}
		spec := SpecFor(FunctionalSkill(t, "hello"), opts)
		spec.Require = []sandbox.Feature{missing}
		sb, err := d.Open(context.Background(), spec)
		if err == nil {
			sb.Close()
			t.Fatalf("Open with Require=[%s] succeeded on a driver that does not claim it", missing)
		}
		AssertKind(t, err, errdefs.Unsupported)
		if !strings.Contains(err.Error(), string(missing)) {
			t.Errorf("refusal %q does not name %s", err, missing)
		}
	})

	t.Run("MissingBundle", func(t *testing.T) {
		spec := SpecFor(t.TempDir()+"/does-not-exist", opts)
		sb, err := d.Open(context.Background(), spec)
		if err == nil {
			_, err, _ = Call(t, sb, opts, map[string]any{}, nil)
			sb.Close()
		}
		if err == nil {
			t.Fatal("a missing bundle ran")
		}
		if k := errdefs.KindOf(err); k == errdefs.Internal {
			t.Errorf("missing bundle reported as %s: %v", k, err)
		}
	})

	t.Run("CallAfterClose", func(t *testing.T) {
		sb, err := d.Open(context.Background(), SpecFor(FunctionalSkill(t, "hello"), opts))
		if err != nil {
			t.Fatal(err)
		}
		if err := sb.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err, _ := Call(t, sb, opts, map[string]any{}, nil); err == nil {
			t.Error("Call after Close succeeded")
		}
	})
}

// checkTruncated asserts both captures are capped at about stdio bytes and
// marked truncated. The cap may be exceeded by a short marker.
func checkTruncated(t testing.TB, res *sandbox.Result, stdio int64) {
	t.Helper()
	const marker = 256
	for _, c := range []struct {
		name string
		b    []byte
		tr   bool
	}{{"stdout", res.Stdout, res.StdoutTruncated}, {"stderr", res.Stderr, res.StderrTruncated}} {
		if !c.tr {
			t.Errorf("%s not marked truncated (%d bytes kept, cap %d)", c.name, len(c.b), stdio)
		}
		if int64(len(c.b)) > stdio+marker {
			t.Errorf("%s kept %d bytes, cap %d", c.name, len(c.b), stdio)
		}
	}
}
