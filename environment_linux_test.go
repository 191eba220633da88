package skillbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/skillbox-dev/skillbox"
	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/skillenv"
	"github.com/skillbox-dev/skillbox/internal/skillenv/envtest"
	"github.com/skillbox-dev/skillbox/policy"
	"github.com/skillbox-dev/skillbox/skill"
)

// envSkill imports its requirement and reports where it came from and
// which process ran the requirement's .pth file; it tries to change its
// environment (shared by every skill with the same key) and reports what
// happened.
const envSkill = `import os, sys
import alpha
from skillware.core.base_skill import BaseSkill


def _try(f):
    try:
        f()
        return "done"
    except OSError as e:
        return "refused: %s" % e


class S(BaseSkill):
    def execute(self, params):
        site = os.path.dirname(alpha.__file__)
        writes = {
            "edit": _try(lambda: open(alpha.__file__, "a").write("VERSION = 'poisoned'\n")),
            "create": _try(lambda: open(os.path.join(site, "planted.pth"), "w").write("import os\n")),
            "remove": _try(lambda: os.unlink(alpha.__file__)),
        }
        return {"version": alpha.VERSION, "file": alpha.__file__, "pid": os.getpid(),
                "pth_pid": int(os.environ.get("SKILLBOX_TEST_PTH_PID", "0")), "writes": writes}
`

// pipEnv is a Runtime's environment lookup naming only the loopback
// index (pip's configuration files out of the way).
func pipEnv(url string) skillbox.Option {
	return skillbox.WithLookupEnv(func(k string) (string, bool) {
		v, ok := map[string]string{"PIP_INDEX_URL": url, "PIP_CONFIG_FILE": os.DevNull}[k]
		return v, ok
	})
}

// TestSkillEnvironment: on the linux backend a skill that declares
// requirements runs on its own environment, built once (in a jail, from a
// loopback index) with a progress line, and used by later calls and by
// another skill with the same (normalised) requirements; its
// packages' start-up code (.pth) runs in each call's own process, not in
// the zygote, unless the operator lists the environment's digest in
// trusted_environments. The environment is read-only to the skill. A
// requirement pip cannot satisfy is unavailable, naming it and pip's
// reason.
func TestSkillEnvironment(t *testing.T) {
	requireEnvironmentBuilds(t)
	wheels := t.TempDir()
	envtest.WheelOf(t, wheels, "alpha", "1.0", map[string]string{
		"alpha.py":          "VERSION = '1.0'\n",
		"alpha_startup.pth": "import os; os.environ['SKILLBOX_TEST_PTH_PID'] = str(os.getpid())\n",
	})
	url, _ := envtest.Index(t, wheels)
	root, cache := t.TempDir(), t.TempDir()
	// test/also spells the same requirement differently: one key, one
	// environment.
	for name, reqs := range map[string]string{"uses": `["alpha"]`, "also": `["Alpha"]`, "missing": `["gamma>=9"]`} {
		dir := filepath.Join(root, "test", name)
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "manifest.yaml"), []byte("name: "+name+"\nversion: \"1\"\ndescription: d\nrequirements: "+reqs+"\n"), 0o644)
		os.WriteFile(filepath.Join(dir, "skill.py"), []byte(envSkill), 0o644)
	}
	var mu sync.Mutex
	var lines []string
	newRT := func(opts ...skillbox.Option) *skillbox.Runtime {
		opts = append([]skillbox.Option{skillbox.WithRoots(skill.Root{Path: root, Tier: skill.TierProject}),
			skillbox.WithCacheDir(cache), pipEnv(url), skillbox.WithEnvProgress(func(l string) {
				mu.Lock()
				lines = append(lines, l)
				mu.Unlock()
			})}, opts...)
		rt, err := skillbox.New(opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rt.Close() })
		return rt
	}
	type out struct {
		Version string `json:"version"`
		File    string `json:"file"`
		PID     int    `json:"pid"`
		PthPID  int    `json:"pth_pid"`
		// Writes are the skill's attempts to change its environment.
		Writes map[string]string `json:"writes"`
	}
	callSkill := func(rt *skillbox.Runtime, id string) out {
		t.Helper()
		res, err := rt.Call(context.Background(), id, nil, skillbox.CallOptions{Backend: "linux"})
		if err != nil {
			t.Fatalf("%v\n%s", err, strings.Join(lines, "\n"))
		}
		var o out
		if err := json.Unmarshal(res.Value, &o); err != nil {
			t.Fatal(err)
		}
		return o
	}
	call := func(rt *skillbox.Runtime) out { t.Helper(); return callSkill(rt, "test/uses") }
	rt := newRT()
	first, second := call(rt), call(rt)
	also := callSkill(rt, "test/also")
	if also.File != first.File {
		t.Errorf("test/also imported %s, test/uses %s: want the environment they share", also.File, first.File)
	}
	envs := filepath.Join(cache, "envs")
	for _, o := range []out{first, second, also} {
		if o.Version != "1.0" || !strings.HasPrefix(o.File, envs+"/") {
			t.Errorf("the skill imported %+v, want alpha 1.0 from its environment under %s", o, envs)
		}
		for what, got := range o.Writes {
			if !strings.HasPrefix(got, "refused") {
				t.Errorf("the skill's %s in its environment (mounted read-only): %s", what, got)
			}
		}
		if len(o.Writes) != 3 {
			t.Errorf("writes %v: want the skill's three attempts", o.Writes)
		}
		if o.PthPID != o.PID {
			t.Errorf("the environment's .pth ran in process %d, not the call's own %d (the zygote processed site)", o.PthPID, o.PID)
		}
	}
	building := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "building the environment of ") {
			building++
		}
	}
	if building != 1 {
		t.Errorf("%d build announcements, want 1: %q", building, lines)
	}

	_, err := rt.Call(context.Background(), "test/missing", nil, skillbox.CallOptions{Backend: "linux"})
	if !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), "gamma>=9") ||
		!strings.Contains(err.Error(), "No matching distribution found for gamma>=9") {
		t.Errorf("err = %v; want unavailable naming the requirement and pip's reason", err)
	}

	// Trusted by digest: the zygote processes the environment's site
	// (exec: zygote; the default's spares are interpreters of their own).
	c := &skillenv.Cache{Dir: envs}
	list, err := c.List()
	if err != nil || len(list) != 1 {
		t.Fatalf("environments: %v %v", list, err)
	}
	pol, err := policy.Parse("/etc/p.yaml", []byte(fmt.Sprintf("trusted_environments: [%q]\nbackends:\n  linux: {exec: zygote}\n", list[0].Digest())))
	if err != nil {
		t.Fatal(err)
	}
	trusted := call(newRT(skillbox.WithPolicy(pol)))
	if trusted.PthPID == 0 || trusted.PthPID == trusted.PID {
		t.Errorf("trusted environment: the .pth ran in %d, the call in %d; want the zygote's", trusted.PthPID, trusted.PID)
	}
}

// A skill that imports a package the interpreter lacks fails as an unmet
// requirement (unavailable, naming it), not as the skill's ImportError —
// whether or not the import happens at load time.
func TestMissingRequirementIsUnavailable(t *testing.T) {
	root := t.TempDir()
	for name, code := range map[string]string{
		"import_at_load": "import skillbox_no_such_pkg\n",
		"never_imports":  "",
	} {
		dir := filepath.Join(root, "test", name)
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "manifest.yaml"), []byte("name: "+name+"\nversion: \"1\"\ndescription: d\nrequirements: [\"skillbox-no-such-pkg>=1.0\"]\n"), 0o644)
		os.WriteFile(filepath.Join(dir, "skill.py"), []byte(code+`from skillware.core.base_skill import BaseSkill
class S(BaseSkill):
    def execute(self, params):
        return {}
`), 0o644)
	}
	outside := t.TempDir()
	if err := os.CopyFS(filepath.Join(outside, "never_imports"), os.DirFS(filepath.Join(root, "test", "never_imports"))); err != nil {
		t.Fatal(err)
	}
	// The linux and pyodide backends build the skill's environment, from
	// an empty loopback index here: the build fails naming the requirement.
	url, _ := envtest.Index(t, t.TempDir())
	rt, err := skillbox.New(skillbox.WithRoots(skill.Root{Path: root, Tier: skill.TierProject}), skillbox.WithCacheDir(t.TempDir()), pipEnv(url))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	for _, backend := range backendsUnderTest(t) {
		want := "skillbox-no-such-pkg>=1.0 (not installed)"
		switch backend {
		case "linux", "pyodide":
			// The retry command names the skill by its id: a root holds it.
			want = "could not be built"
		case "process", "gvisor":
			// The host's interpreter lacks it: how to point to another,
			// or have an environment built.
			want += " (SKILLBOX_PYTHON names another interpreter; the linux backend runs the skill on an environment of its own, built with pip: 'skillbox env build test/"
		}
		for _, name := range []string{"import_at_load", "never_imports"} {
			t.Run(backend+"/"+name, func(t *testing.T) {
				_, err := rt.Call(context.Background(), "test/"+name, nil, skillbox.CallOptions{Backend: backend})
				retry := "`skillbox env build test/" + name + "` retries"
				if backend != "linux" && backend != "pyodide" {
					retry = ""
				}
				if !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "skillbox-no-such-pkg>=1.0") || !strings.Contains(err.Error(), retry) {
					t.Fatalf("err = %v; want unavailable naming the missing requirement", err)
				}
			})
		}
		// Run by a folder outside the roots, the skill is named by its
		// folder in the command the hint prints: its id would not find it.
		t.Run(backend+"/by_path", func(t *testing.T) {
			dir := filepath.Join(outside, "never_imports")
			_, err := rt.Call(context.Background(), dir, nil, skillbox.CallOptions{Backend: backend, TrustRemoteCode: true})
			cmd := "skillbox env build " + dir
			if !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), cmd) || strings.Contains(err.Error(), "skillbox env build test/") {
				t.Fatalf("err = %v; want unavailable with the command %q", err, cmd)
			}
		})
	}
}

// TestTrustedEnvironmentIsWhatItHolds: trusted_environments trusts an
// environment for what it holds, not for the requirements it was built
// from. The operator reviews a build (alpha 1.0) and lists it; the index
// then publishes alpha 1.1 with start-up code (.pth) and the cache is
// pruned: the rebuild holds another set, so the zygote does not process
// its site (the .pth runs in the call's own process), whatever the policy
// lists for the old build.
func TestTrustedEnvironmentIsWhatItHolds(t *testing.T) {
	requireEnvironmentBuilds(t)
	wheels := t.TempDir()
	pth := "import os; os.environ['SKILLBOX_TEST_PTH_PID'] = str(os.getpid())\n"
	envtest.WheelOf(t, wheels, "alpha", "1.0", map[string]string{"alpha.py": "VERSION = '1.0'\n", "alpha_startup.pth": pth})
	url, _ := envtest.Index(t, wheels)
	root, cache := t.TempDir(), t.TempDir()
	dir := filepath.Join(root, "test", "uses")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "manifest.yaml"), []byte("name: uses\nversion: \"1\"\ndescription: d\nrequirements: [\"alpha\"]\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "skill.py"), []byte(envSkill), 0o644)
	type out struct {
		Version string `json:"version"`
		PID     int    `json:"pid"`
		PthPID  int    `json:"pth_pid"`
	}
	// call runs the skill once in a Runtime of its own, closed after it
	// (so that a prune may remove the environment).
	call := func(opts ...skillbox.Option) out {
		t.Helper()
		rt, err := skillbox.New(append([]skillbox.Option{skillbox.WithRoots(skill.Root{Path: root, Tier: skill.TierProject}),
			skillbox.WithCacheDir(cache), pipEnv(url)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		defer rt.Close()
		res, err := rt.Call(context.Background(), "test/uses", nil, skillbox.CallOptions{Backend: "linux"})
		if err != nil {
			t.Fatal(err)
		}
		var o out
		if err := json.Unmarshal(res.Value, &o); err != nil {
			t.Fatal(err)
		}
		return o
	}
	trusting := func(entries ...string) skillbox.Option {
		t.Helper()
		var b strings.Builder
		for _, e := range entries {
			fmt.Fprintf(&b, "  - %q\n", e)
		}
		pol, err := policy.Parse("/etc/p.yaml", []byte("trusted_environments:\n"+b.String()+"backends:\n  linux: {exec: zygote}\n"))
		if err != nil {
			t.Fatal(err)
		}
		return skillbox.WithPolicy(pol)
	}
	if o := call(); o.Version != "1.0" {
		t.Fatalf("first build: %+v, want alpha 1.0", o)
	}
	c := &skillenv.Cache{Dir: filepath.Join(cache, "envs")}
	list, err := c.List()
	if err != nil || len(list) != 1 {
		t.Fatalf("environments: %v %v", list, err)
	}
	key, reviewed := list[0].Key, list[0].Digest()
	if st := environmentOf(t, root, cache, url, trusting(reviewed)); st.Digest != reviewed || !st.Trusted {
		t.Errorf("inspect, its digest listed: digest %s, trusted %v; want %s, true", st.Digest, st.Trusted, reviewed)
	}
	if st := environmentOf(t, root, cache, url, trusting(key)); st.Trusted || !st.KeyListed {
		t.Errorf("inspect, its key listed: trusted %v, key listed %v; want false, true", st.Trusted, st.KeyListed)
	}

	if o := call(trusting(key)); o.PthPID != o.PID {
		t.Errorf("its key listed: the .pth ran in %d, not the call's own %d: a key trusted it", o.PthPID, o.PID)
	}
	if o := call(trusting(reviewed)); o.PthPID == 0 || o.PthPID == o.PID {
		t.Errorf("the reviewed environment, trusted: the .pth ran in %d, the call in %d; want the zygote's", o.PthPID, o.PID)
	}

	envtest.WheelOf(t, wheels, "alpha", "1.1", map[string]string{"alpha.py": "VERSION = '1.1'\n", "alpha_startup.pth": pth})
	if removed, inUse, err := c.Prune(func(*skillenv.Env) bool { return false }); len(removed) != 1 || len(inUse) != 0 || err != nil {
		t.Fatalf("prune: removed %v, in use %v, %v", removed, inUse, err)
	}
	// The policy lists what was reviewed and, for good measure, the key
	// too: neither trusts what the rebuild holds.
	o := call(trusting(reviewed, key))
	if o.Version != "1.1" {
		t.Fatalf("after the rebuild: %+v, want alpha 1.1 (resolved anew)", o)
	}
	if list, _ := c.List(); len(list) != 1 || list[0].Key != key || list[0].Digest() == reviewed {
		t.Fatalf("after the rebuild: %v, want one environment with the key %s and a digest other than %s", list, key, reviewed)
	}
	if o.PthPID != o.PID {
		t.Errorf("the rebuilt environment (alpha 1.1, not reviewed): its .pth ran in %d, not the call's own %d: the zygote processed it as trusted", o.PthPID, o.PID)
	}
}

// environmentOf is Runtime.Environment of test/uses under opts.
func environmentOf(t *testing.T, root, cache, url string, opts ...skillbox.Option) *skillbox.EnvironmentStatus {
	t.Helper()
	rt, err := skillbox.New(append([]skillbox.Option{skillbox.WithRoots(skill.Root{Path: root, Tier: skill.TierProject}),
		skillbox.WithCacheDir(cache), pipEnv(url)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	st, err := rt.Environment(context.Background(), "test/uses", "linux")
	if err != nil {
		t.Fatal(err)
	}
	return st
}
