//go:build linux

package pyodide

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/sandbox/sandboxtest"
)

// bombSkill allocates params["mib"] MiB in 16 MiB chunks (0: returns at once).
const bombSkill = `from skillware.core.base_skill import BaseSkill

class Bomb(BaseSkill):
    def execute(self, params):
        chunks = []
        for _ in range(int(params.get("mib", 0)) // 16):
            chunks.append(bytearray(b"\x01") * (16 << 20))
        return {"allocated": len(chunks) * 16}
`

func bombBundle(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "bomb")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "manifest.yaml"), []byte("name: bomb\nversion: 0.1.0\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "skill.py"), []byte(bombSkill), 0o644)
	return dir
}

// ourGroups lists this process's worker cgroups.
func ourGroups() []string {
	var out []string
	for _, pat := range []string{"/sys/fs/cgroup/*/skillbox/%d-pyodide*", "/sys/fs/cgroup/*/*/skillbox/%d-pyodide*",
		"/sys/fs/cgroup/*/*/*/skillbox/%d-pyodide*", "/sys/fs/cgroup/skillbox/%d-pyodide*", "/sys/fs/cgroup/*/*/*/*/skillbox/%d-pyodide*"} {
		m, _ := filepath.Glob(strings.Replace(pat, "%d", strconv.Itoa(os.Getpid()), 1))
		out = append(out, m...)
	}
	return out
}

// TestMemoryLimit: a worker past baseline + budget is OOM-killed in its
// cgroup and the call ends as LimitError memory; the sandbox goes on
// working, under the budget a call succeeds, and no group is left.
func TestMemoryLimit(t *testing.T) {
	d := testDriver(t)
	if c := d.Probe(context.Background()); !c.Has(sandbox.FeatureMemory) {
		t.Skipf("memory cgroup controller not usable here: %v (TestCgroupMissing checks the refusal)", c.Layers)
	}
	opts := sandboxtest.Options{Limits: sandbox.Limits{Memory: 64 << 20}}
	sb := sandboxtest.Open(t, d, sandboxtest.SpecFor(bombBundle(t), opts))
	_, err, _ := sandboxtest.Call(t, sb, opts, map[string]any{"mib": 2048}, nil)
	le := sandboxtest.AssertLimit(t, err, "memory")
	t.Logf("memory bomb: %v", le)
	res, err, _ := sandboxtest.Call(t, sb, opts, map[string]any{"mib": 32}, nil)
	var got struct{ Allocated int }
	sandboxtest.MustResult(t, res, err, &got)
	if got.Allocated != 32 {
		t.Fatalf("allocated %d MiB, want 32", got.Allocated)
	}
	t.Logf("32 MiB within a 64 MiB budget (host cgroup limit %d MiB)", (hostBaseline+isolateBaseline+64<<20)>>20)
	if err := sb.Close(); err != nil {
		t.Fatal(err)
	}
	if g := ourGroups(); len(g) > 0 {
		t.Errorf("worker cgroups left after Close: %v", g)
	}
}

// TestCgroupMissing: without the memory (or pids) controller the backend
// does not claim the limit, refuses a Spec that requires it, and still
// runs other Specs (workers started without a group).
func TestCgroupMissing(t *testing.T) {
	testDriver(t)
	for _, tc := range []struct {
		ctl     string
		feature sandbox.Feature
		layer   string
	}{{"memory", sandbox.FeatureMemory, "cgroup-memory"}, {"pids", sandbox.FeaturePids, "cgroup-pids"}} {
		t.Run(tc.ctl, func(t *testing.T) {
			d := newTestDriver(seams{missing: map[string]bool{tc.ctl: true}})
			c := d.Probe(context.Background())
			if c.Has(tc.feature) {
				t.Fatalf("Probe claims %s with the %s controller missing", tc.feature, tc.ctl)
			}
			i := slices.IndexFunc(c.Layers, func(l sandbox.Layer) bool { return l.Name == tc.layer })
			if i < 0 || c.Layers[i].Available || !strings.Contains(c.Layers[i].Detail, "fake") {
				t.Fatalf("layer %s not reported missing: %+v", tc.layer, c.Layers)
			}
			spec := sandboxtest.SpecFor(bombBundle(t), sandboxtest.Options{})
			spec.Require = []sandbox.Feature{tc.feature}
			if sb, err := d.Open(context.Background(), spec); err == nil {
				sb.Close()
				t.Fatalf("Open requiring %s succeeded without the controller", tc.feature)
			} else if errdefs.KindOf(err) != errdefs.Unsupported || !strings.Contains(err.Error(), string(tc.feature)) {
				t.Fatalf("got %v (kind %s), want unsupported naming %s", err, errdefs.KindOf(err), tc.feature)
			}
			spec.Require = nil
			sb := sandboxtest.Open(t, d, spec)
			res, err, _ := sandboxtest.Call(t, sb, sandboxtest.Options{}, map[string]any{"mib": 0}, nil)
			sandboxtest.MustResult(t, res, err, nil)
		})
	}
	d := newTestDriver(seams{missing: map[string]bool{"memory": true, "pids": true}})
	spec := sandboxtest.SpecFor(bombBundle(t), sandboxtest.Options{})
	sb := sandboxtest.Open(t, d, spec)
	if _, err, _ := sandboxtest.Call(t, sb, sandboxtest.Options{}, map[string]any{"mib": 0}, nil); err != nil {
		t.Fatalf("call without any cgroup: %v", err)
	}
	if g := ourGroups(); len(g) > 0 {
		t.Errorf("a worker cgroup was created with both controllers missing: %v", g)
	}
}

// TestBudgetIsPerCall: each single-use call gets its whole memory budget
// on top of what its host holds (the host, its armed and its started Web
// Workers: hostBaseline and isolateBaseline must cover them), however
// much the call before it used.
func TestBudgetIsPerCall(t *testing.T) {
	d := testDriver(t)
	if c := d.Probe(context.Background()); !c.Has(sandbox.FeatureMemory) {
		t.Skipf("memory cgroup controller not usable here: %v", c.Layers)
	}
	opts := sandboxtest.Options{Limits: sandbox.Limits{Memory: 128 << 20}}
	sb := sandboxtest.Open(t, d, sandboxtest.SpecFor(bombBundle(t), opts))
	for i := range 8 {
		res, err, _ := sandboxtest.Call(t, sb, opts, map[string]any{"mib": 96}, nil)
		var got struct{ Allocated int }
		if err != nil {
			t.Fatalf("call %d: 96 MiB within a 128 MiB budget: %v", i, err)
		}
		sandboxtest.MustResult(t, res, err, &got)
	}
}

// lingerSkill allocates params["mib"] MiB (its WebAssembly memory never
// shrinks) and, with params["linger"], spins in a loop from the moment its
// reply is posted: Deno's terminate() does not stop a worker busy in a
// loop. With params["exit"]
// it calls os._exit holding the allocation, and would loop after it.
const lingerSkill = `import js
from skillware.core.base_skill import BaseSkill

class Linger(BaseSkill):
    def execute(self, params):
        hold = bytearray(b"\x01") * (int(params.get("mib", 0)) << 20)
        if params.get("exit"):
            import os
            try:
                os._exit(3)
            finally:
                while len(hold) >= 0:
                    pass
        if params.get("linger"):
            # The worker's own reply goes through self.postMessage: spin
            # right after it, before the host can terminate the worker.
            js.eval("""(() => {
  const orig = self.postMessage.bind(self);
  self.postMessage = (m, t) => { orig(m, t); if (m && m.t === "frame") { for (;;) {} } };
})()""")
        return {"allocated": len(hold) >> 20}
`

// TestLingeringWorker: a call that leaves its Web Worker busy after the
// reply (a loop Deno's terminate() cannot stop) leaves nothing a later
// call meets: the later calls get their whole budget (the host that held
// the loop was retired, the loop killed with it).
func TestLingeringWorker(t *testing.T) {
	d := testDriver(t)
	if c := d.Probe(context.Background()); !c.Has(sandbox.FeatureMemory) {
		t.Skipf("memory cgroup controller not usable here: %v", c.Layers)
	}
	dir := filepath.Join(t.TempDir(), "linger")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "manifest.yaml"), []byte("name: linger\nversion: 0.1.0\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "skill.py"), []byte(lingerSkill), 0o644)
	opts := sandboxtest.Options{Limits: sandbox.Limits{Memory: 128 << 20}}
	sb := sandboxtest.Open(t, d, sandboxtest.SpecFor(dir, opts))
	res, err, _ := sandboxtest.Call(t, sb, opts, map[string]any{"mib": 96, "linger": true}, nil)
	var got struct{ Allocated int }
	sandboxtest.MustResult(t, res, err, &got)
	for i := range 3 {
		res, err, _ := sandboxtest.Call(t, sb, opts, map[string]any{"mib": 96}, nil)
		if err != nil {
			t.Fatalf("call %d after a lingering one: 96 MiB within a 128 MiB budget: %v", i, err)
		}
		sandboxtest.MustResult(t, res, err, &got)
	}
	// os._exit ends the call's worker: no Python runs after it (the loop
	// in its finally would hold the worker), and nothing of it is left
	// for the calls after it.
	for i := range 4 {
		_, err, _ := sandboxtest.Call(t, sb, opts, map[string]any{"mib": 96, "exit": true}, nil)
		sandboxtest.AssertSkillError(t, err, "WorkerExited")
		if t.Failed() {
			t.Fatalf("exit %d", i)
		}
	}
	for i := range 2 {
		res, err, _ := sandboxtest.Call(t, sb, opts, map[string]any{"mib": 96}, nil)
		if err != nil {
			t.Fatalf("call %d after four os._exit calls: 96 MiB within a 128 MiB budget: %v", i, err)
		}
		sandboxtest.MustResult(t, res, err, &got)
	}
}
