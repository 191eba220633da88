package skillbox_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox"
	"github.com/skillbox-dev/skillbox/internal/skillenv"
	"github.com/skillbox-dev/skillbox/internal/skillenv/envtest"
	"github.com/skillbox-dev/skillbox/policy"
	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/skill"
)

// heavyModules is how many modules the heavy test package imports when it
// is imported: a stand-in for a real third-party requirement's import
// (requests and its dependencies are ~100 modules; numpy several hundred).
const heavyModules = 200

// heavyIndex writes the wheels of the environment benchmarks — heavy (a
// package of heavyModules submodules, imported whole, depending on three
// small ones) — serves them on a loopback index and returns its URL.
func heavyIndex(b *testing.B) string {
	b.Helper()
	wheels := b.TempDir()
	files := map[string]string{}
	var init strings.Builder
	for i := range heavyModules {
		var m strings.Builder
		fmt.Fprintf(&m, "import dep%d\n\nclass Thing%d:\n", i%3, i)
		for j := range 20 {
			fmt.Fprintf(&m, "    def method%d(self, x):\n        return [x * %d for _ in range(%d)]\n", j, j, i%7)
		}
		fmt.Fprintf(&m, "\nTABLE = {str(k): k * %d for k in range(50)}\n", i)
		files[fmt.Sprintf("heavy/m%03d.py", i)] = m.String()
		fmt.Fprintf(&init, "from . import m%03d\n", i)
	}
	files["heavy/__init__.py"] = init.String() + "VERSION = '1.0'\n"
	envtest.WheelOf(b, wheels, "heavy", "1.0", files)
	for i := range 3 {
		envtest.Wheel(b, wheels, fmt.Sprintf("dep%d", i), "1.0", "X = 1\n")
	}
	url, _ := envtest.Index(b, wheels)
	return url
}

// heavySkills writes test/heavy (requires heavy and imports it) and
// test/light (the same skill without it) under a new root.
func heavySkills(b *testing.B) string {
	b.Helper()
	root := b.TempDir()
	for name, reqs := range map[string]string{"heavy": "requirements: [\"heavy\", \"dep0\", \"dep1\", \"dep2\"]\n", "light": ""} {
		dir := filepath.Join(root, "test", name)
		os.MkdirAll(dir, 0o755)
		imp := ""
		if name == "heavy" {
			imp = "import heavy\n"
		}
		os.WriteFile(filepath.Join(dir, "manifest.yaml"), []byte("name: "+name+"\nversion: \"1\"\ndescription: d\n"+reqs), 0o644)
		os.WriteFile(filepath.Join(dir, "skill.py"), []byte(imp+"from skillware.core.base_skill import BaseSkill\n\nclass S(BaseSkill):\n    def execute(self, params):\n        return {'ok': True}\n"), 0o644)
	}
	return root
}

func needEnvBuilds(b *testing.B) {
	b.Helper()
	d, err := sandbox.Lookup("linux")
	if err != nil {
		b.Skip(err)
	}
	if c := d.Probe(context.Background()); !c.Available {
		b.Skipf("linux backend unavailable: %s", c.Reason)
	}
	if os.Geteuid() != 0 {
		b.Skip("needs root: environments are built in a jail")
	}
	if _, err := skillenv.PipWheel(); err != nil {
		b.Skip(err)
	}
}

// BenchmarkEnvironmentBuild is a skill's first use with requirements: its
// environment built in a jail (venv, pip from Debian's wheel, four wheels
// from a loopback index, the copy out), each iteration into a new cache.
//
//	go test -run '^$' -bench 'EnvironmentBuild' -benchtime 5x .
func BenchmarkEnvironmentBuild(b *testing.B) {
	needEnvBuilds(b)
	url, root := heavyIndex(b), heavySkills(b)
	for b.Loop() {
		rt, err := skillbox.New(skillbox.WithRoots(skill.Root{Path: root, Tier: skill.TierProject}),
			skillbox.WithCacheDir(b.TempDir()), pipEnv(url))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := rt.BuildEnvironment(context.Background(), "test/heavy", "linux"); err != nil {
			b.Fatal(err)
		}
		rt.Close()
	}
}

// BenchmarkRequirementCall is a call of a skill whose requirement imports
// heavyModules modules, against the same skill without it, single-use on
// the linux backend, back to back (each call's child imports the skill and
// its environment) and pre-forked (the next child has imported them before
// the call); "heavy-trusted" lists the environment in trusted_environments
// (its site and imports in the zygote). p50 in ms.
//
//	go test -run '^$' -bench 'RequirementCall' -benchtime 100x .
func BenchmarkRequirementCall(b *testing.B) {
	needEnvBuilds(b)
	url, root := heavyIndex(b), heavySkills(b)
	cache := b.TempDir()
	newRT := func(pol *policy.Policy) *skillbox.Runtime {
		opts := []skillbox.Option{skillbox.WithRoots(skill.Root{Path: root, Tier: skill.TierProject}), skillbox.WithCacheDir(cache), pipEnv(url)}
		if pol != nil {
			opts = append(opts, skillbox.WithPolicy(pol))
		}
		rt, err := skillbox.New(opts...)
		if err != nil {
			b.Fatal(err)
		}
		return rt
	}
	rt := newRT(nil)
	defer rt.Close()
	st, err := rt.BuildEnvironment(context.Background(), "test/heavy", "linux")
	if err != nil {
		b.Fatal(err)
	}
	trusted := newRT(&policy.Policy{TrustedEnvironments: []string{st.Digest}})
	defer trusted.Close()
	for _, c := range []struct {
		name string
		rt   *skillbox.Runtime
		id   string
	}{{"none", rt, "test/light"}, {"heavy", rt, "test/heavy"}, {"heavy-trusted", trusted, "test/heavy"}} {
		for _, mode := range []string{"back-to-back", "pre-forked"} {
			b.Run(c.name+"/"+mode, func(b *testing.B) {
				call := func() time.Duration {
					start := time.Now()
					if _, err := c.rt.Call(context.Background(), c.id, nil, skillbox.CallOptions{Backend: "linux"}); err != nil {
						b.Fatal(err)
					}
					return time.Since(start)
				}
				call() // open the sandbox
				var took []time.Duration
				for b.Loop() {
					if mode == "pre-forked" {
						b.StopTimer()
						time.Sleep(300 * time.Millisecond) // the next child imports meanwhile
						b.StartTimer()
					}
					took = append(took, call())
				}
				slices.Sort(took)
				b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
			})
		}
	}
}
