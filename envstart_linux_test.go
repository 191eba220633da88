package skillbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox"
	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/skillenv"
	"github.com/skillbox-dev/skillbox/internal/skillenv/envtest"
	"github.com/skillbox-dev/skillbox/policy"
	"github.com/skillbox-dev/skillbox/skill"
)

// startSkill reports its process, its parent, sys.path and what a
// package's code left in the environment.
const startSkill = `import os, sys
from skillware.core.base_skill import BaseSkill
class S(BaseSkill):
    def execute(self, params):
        return {"pid": os.getpid(), "pwn": os.environ.get("SKILLBOX_PWN", ""), "path": sys.path,
                "executable": sys.executable, "prefix": sys.prefix}
`

type startReply struct {
	PID        int
	Pwn        string
	Path       []string
	Executable string
	Prefix     string
}

// startRuntime is a Runtime with the skill test/start (startSkill,
// requiring reqs) under root, zygotes on the linux backend, and no
// environment trusted.
func startRuntime(t *testing.T, root, cache, url string, reqs string) *skillbox.Runtime {
	t.Helper()
	dir := filepath.Join(root, "test", "start")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "manifest.yaml"), []byte("name: start\nversion: \"1\"\ndescription: d\nrequirements: ["+reqs+"]\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "skill.py"), []byte(startSkill), 0o644)
	pol, err := policy.Parse("/etc/p.yaml", []byte("backends:\n  linux: {exec: zygote}\n"))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := skillbox.New(skillbox.WithRoots(skill.Root{Path: root, Tier: skill.TierProject}),
		skillbox.WithCacheDir(cache), pipEnv(url), skillbox.WithPolicy(pol))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

// requireEnvironmentBuilds skips t where environments cannot be built:
// they are built in a jail (linux backend, root) by pip.
func requireEnvironmentBuilds(t *testing.T) {
	t.Helper()
	requireBackend(t, "linux")
	if os.Geteuid() != 0 {
		t.Skip("needs root: environments are built in a jail")
	}
	if _, err := skillenv.PipWheel(); err != nil {
		t.Skip(err)
	}
}

// A wheel (no sdist, no code run at install) that ships
// NAME.data/scripts/python replaces the environment's bin/python: the
// build is refused, naming the package, so that its script never runs,
// least of all as the zygote's program (a process serving every call)
// of an environment nobody trusted.
func TestEnvironmentPackageCannotReplaceInterpreter(t *testing.T) {
	requireEnvironmentBuilds(t)
	real, err := filepath.EvalSymlinks("/usr/bin/python3")
	if err != nil {
		t.Skip(err)
	}
	wheels := t.TempDir()
	hostile := "#!" + real + "\n" +
		"import os, sys\n" +
		"os.environ['SKILLBOX_PWN'] = 'set by the package in pid %d' % os.getpid()\n" +
		"os.execv(" + fmt.Sprintf("%q", real) + ", [sys.argv[0]] + sys.argv[1:])\n"
	envtest.ScriptWheel(t, wheels, "alpha", "1.0", "python", hostile)
	url, _ := envtest.Index(t, wheels)
	rt := startRuntime(t, t.TempDir(), t.TempDir(), url, `"alpha"`)
	res, err := rt.Call(context.Background(), "test/start", nil, skillbox.CallOptions{Backend: "linux"})
	if err == nil {
		var o startReply
		json.Unmarshal(res.Value, &o)
		t.Fatalf("the call ran (pid %d, SKILLBOX_PWN %q): want the build refused", o.PID, o.Pwn)
	}
	if errdefs.KindOf(err) != errdefs.Unavailable || !strings.Contains(err.Error(), "replaced bin/python (installed by alpha 1.0)") {
		t.Errorf("error %v (kind %s), want unavailable naming bin/python and alpha 1.0", err, errdefs.KindOf(err))
	}
}

// The jail starts an environment's interpreter as its base (argv[0]
// too), so nothing of the environment is read at start: a NAME._pth
// beside bin/python (which replaces sys.path at start, in the zygote)
// has no effect, and the skill's code still sees the environment as a
// virtual environment (sys.executable its bin/python, sys.prefix its
// folder) once site is processed. An environment whose bin/python is not
// a link to its base is refused.
func TestEnvironmentStartReadsNothingOfIt(t *testing.T) {
	requireEnvironmentBuilds(t)
	wheels := t.TempDir()
	envtest.WheelOf(t, wheels, "alpha", "1.0", map[string]string{"alpha.py": "VERSION = '1.0'\n"})
	url, _ := envtest.Index(t, wheels)
	root, cache := t.TempDir(), t.TempDir()
	rt := startRuntime(t, root, cache, url, `"alpha"`)
	if _, err := rt.Call(context.Background(), "test/start", nil, skillbox.CallOptions{Backend: "linux"}); err != nil {
		t.Fatal(err)
	}
	rt.Close()
	envs, _ := filepath.Glob(filepath.Join(cache, "envs", "*", "pyvenv.cfg"))
	if len(envs) != 1 {
		t.Fatalf("environments %q, want one", envs)
	}
	env := filepath.Dir(envs[0])
	// What a package could have put there (or an environment built
	// before the build refused it): a ._pth naming a folder of its own.
	evil := filepath.Join(env, "evil")
	os.Mkdir(evil, 0o755)
	stdlib, _ := filepath.Glob("/usr/lib/python3.*/os.py")
	if len(stdlib) == 0 {
		t.Skip("no /usr/lib/python3.X")
	}
	pth := evil + "\n" + filepath.Dir(stdlib[0]) + "\n" + filepath.Join(filepath.Dir(stdlib[0]), "lib-dynload") + "\n"
	if err := os.WriteFile(filepath.Join(env, "bin", "python._pth"), []byte(pth), 0o644); err != nil {
		t.Fatal(err)
	}
	rt = startRuntime(t, root, cache, url, `"alpha"`)
	res, err := rt.Call(context.Background(), "test/start", nil, skillbox.CallOptions{Backend: "linux"})
	if err != nil {
		t.Fatal(err)
	}
	var o startReply
	json.Unmarshal(res.Value, &o)
	for _, p := range o.Path {
		if p == evil {
			t.Errorf("the environment's bin/python._pth was read at the interpreter's start: sys.path %q", o.Path)
		}
	}
	if o.Executable != filepath.Join(env, "bin", "python") || o.Prefix != env {
		t.Errorf("sys.executable %s, sys.prefix %s: want the environment's (%s)", o.Executable, o.Prefix, env)
	}
	rt.Close()

	// A script in place of the link to the base is refused.
	python := filepath.Join(env, "bin", "python")
	os.Remove(python)
	if err := os.WriteFile(python, []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	rt = startRuntime(t, root, cache, url, `"alpha"`)
	_, err = rt.Call(context.Background(), "test/start", nil, skillbox.CallOptions{Backend: "linux"})
	if errdefs.KindOf(err) != errdefs.Unavailable || !strings.Contains(err.Error(), "bin/python is not a link to") {
		t.Errorf("error %v, want unavailable saying bin/python is not a link to the base", err)
	}
}
