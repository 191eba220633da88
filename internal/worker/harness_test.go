//go:build linux

package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
)

// testPython is the interpreter the harness tests use; SKILLBOX_TEST_PYTHON
// overrides it (e.g. to check Python 3.8 compatibility).
var testPython = func() string {
	if p := os.Getenv("SKILLBOX_TEST_PYTHON"); p != "" {
		return p
	}
	return "/usr/bin/python3"
}()

func needYAML(t *testing.T) {
	t.Helper()
	needPython(t)
	if exec.Command(testPython, "-c", "import yaml").Run() != nil {
		t.Skipf("skipping: %s has no PyYAML", testPython)
	}
}

func needPython(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(testPython); err != nil {
		t.Skipf("skipping: %s not found (harness tests need a real CPython)", testPython)
	}
}

// writeBundle writes files (path → content) into a new temp dir.
func writeBundle(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func startWorker(t *testing.T, env []string) *Process {
	t.Helper()
	needPython(t)
	cmd := exec.Command(testPython, Argv(testPython)[1:]...)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8"}, env...)
	cmd.Dir = t.TempDir()
	p, err := Start(context.Background(), cmd, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func tctx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// load starts a worker on bundle and sends init; it fails the test on error.
func load(t *testing.T, bundle, mode string, env ...string) (*Process, *Reply) {
	t.Helper()
	p := startWorker(t, env)
	rep, err := p.Init(tctx(t, 20*time.Second), Init{Bundle: bundle, Mode: mode, MaxTraceback: 4096,
		Manifest: json.RawMessage(`{"name":"t/test","parameters":{"type":"object","properties":{"x":{"type":"integer"}},"required":["x"]}}`)})
	if err != nil {
		t.Fatalf("init: %v (stderr: %s)", err, p.Stderr.Bytes())
	}
	return p, rep
}

func call(t *testing.T, p *Process, id uint64, params string, config map[string]string) (json.RawMessage, error) {
	t.Helper()
	return p.Call(tctx(t, 20*time.Second), id, json.RawMessage(params), config)
}

func mustCall(t *testing.T, p *Process, id uint64, params string, config map[string]string) string {
	t.Helper()
	res, err := call(t, p, id, params, config)
	if err != nil {
		t.Fatalf("call %d: %v (stderr: %s)", id, err, p.Stderr.Bytes())
	}
	return string(res)
}

const plainSkill = `
from skillware.core.base_skill import BaseSkill

class Echo(BaseSkill):
    @property
    def manifest(self):
        return {"name": "echo"}

    def execute(self, params):
        print("hello from skill")
        return {"echo": params}
`

func TestHarnessPlain(t *testing.T) {
	p, rep := load(t, writeBundle(t, map[string]string{"skill.py": plainSkill}), ModeSingle)
	if rep.Class != "Echo" || rep.Python == "" {
		t.Fatalf("ready = %+v", rep)
	}
	if got := mustCall(t, p, 1, `{"a":[1,2,"é"]}`, nil); got != `{"echo":{"a":[1,2,"é"]}}` {
		t.Fatalf("result = %s", got)
	}
	st, err := p.Wait()
	if err != nil || st.ExitCode() != 0 {
		t.Fatalf("wait: %v %v", st, err)
	}
	if got := string(p.Stdout.Bytes()); got != "hello from skill\n" {
		t.Fatalf("stdout = %q", got)
	}
}

// TestHarnessRehearsal: a single-mode worker told to rehearse (a
// pre-started jail's) runs the harness's part of a call before ready with a
// stand-in, never the skill's code: the call is the skill's first, its
// instance the first, and its output the only output.
func TestHarnessRehearsal(t *testing.T) {
	bundle := writeBundle(t, map[string]string{"skill.py": `
from skillware.core.base_skill import BaseSkill

COUNTS = {"inits": 0, "calls": 0}

class Counted(BaseSkill):
    def __init__(self, config=None):
        super().__init__(config)
        COUNTS["inits"] += 1
        print("init")

    def execute(self, params):
        COUNTS["calls"] += 1
        print("execute")
        return dict(COUNTS, params=params, config=self.config)
`})
	p := startWorker(t, nil)
	rep, err := p.Init(tctx(t, 20*time.Second), Init{Bundle: bundle, Mode: ModeSingle, Rehearse: true})
	if err != nil {
		t.Fatalf("init: %v (stderr: %s)", err, p.Stderr.Bytes())
	}
	if rep.Class != "Counted" {
		t.Fatalf("ready = %+v", rep)
	}
	got := mustCall(t, p, 1, `{"text":"a b","top":3}`, map[string]string{"K": "v"})
	if want := `{"inits":1,"calls":1,"params":{"text":"a b","top":3},"config":{"K":"v"}}`; got != want {
		t.Fatalf("result\n got %s\nwant %s", got, want)
	}
	if st, err := p.Wait(); err != nil || st.ExitCode() != 0 {
		t.Fatalf("wait: %v %v (stderr: %s)", st, err, p.Stderr.Bytes())
	}
	if got := string(p.Stdout.Bytes()); got != "init\nexecute\n" {
		t.Fatalf("stdout = %q", got)
	}
}

func TestHarnessBundleLayouts(t *testing.T) {
	needYAML(t)
	bundle := writeBundle(t, map[string]string{
		"skill.py": `
import os, sys, importlib.util, json
import yaml
from skillware.core.base_skill import BaseSkill
from . import budget
_spec = importlib.util.spec_from_file_location("helper_mod", os.path.join(os.path.dirname(__file__), "helper.py"))
helper = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(helper)
sys.path.insert(0, os.path.dirname(__file__))
import plain_sibling

class Multi(BaseSkill):
    def execute(self, params):
        with open(os.path.join(os.path.dirname(__file__), "data", "table.json")) as f:
            table = json.load(f)
        return {
            "budget": budget.LIMIT,
            "helper": helper.double(params["x"]),
            "plain": plain_sibling.NAME,
            "table": table["k"],
            "yaml": yaml.safe_load("a: [1, 2]"),
            "file": os.path.basename(__file__),
            "manifest": self.manifest["name"],
            "valid": self.validate_params(params),
        }
`,
		"budget.py":        "LIMIT = 42\n",
		"helper.py":        "def double(x):\n    return 2 * x\n",
		"plain_sibling.py": "NAME = 'sib'\n",
		"data/table.json":  `{"k": "v"}`,
	})
	p, _ := load(t, bundle, ModeSingle)
	got := mustCall(t, p, 1, `{"x":21}`, nil)
	want := `{"budget":42,"helper":42,"plain":"sib","table":"v","yaml":{"a":[1,2]},"file":"skill.py","manifest":"t/test","valid":true}`
	if got != want {
		t.Fatalf("result\n got %s\nwant %s", got, want)
	}
}

func TestHarnessConfigCredentialValidation(t *testing.T) {
	bundle := writeBundle(t, map[string]string{"skill.py": `
from skillware.core.base_skill import BaseSkill, SkillwareParamValidationError
from skillware.core.env import load_env_file
load_env_file()

class Cred(BaseSkill):
    def execute(self, params):
        try:
            self.validate_params({"x": "not an int"})
            bad = "accepted"
        except SkillwareParamValidationError as e:
            bad = "refused" if isinstance(e, ValueError) else "wrong type"
        try:
            self.validate_params({})
            missing = "accepted"
        except SkillwareParamValidationError:
            missing = "refused"
        return {"config": self.config, "key": self.credential("API_KEY"),
                "blank": self.credential("BLANK"), "env": self.credential("FROM_ENV"),
                "none": self.credential("NOPE"), "bad": bad, "missing": missing}
`})
	p, _ := load(t, bundle, ModeSingle, "FROM_ENV=envval", "BLANK=fromenv")
	got := mustCall(t, p, 1, `{"x":1}`, map[string]string{"API_KEY": " secret ", "BLANK": "  "})
	want := `{"config":{"API_KEY":" secret ","BLANK":"  "},"key":"secret","blank":"fromenv","env":"envval","none":null,"bad":"refused","missing":"refused"}`
	if got != want {
		t.Fatalf("result\n got %s\nwant %s", got, want)
	}
}

func TestHarnessAsync(t *testing.T) {
	bundle := writeBundle(t, map[string]string{"skill.py": `
import asyncio
from skillware.core.base_skill import BaseSkill

class Base(BaseSkill):
    pass

class AsyncOnly(Base):
    async def aexecute(self, params):
        await asyncio.sleep(0)
        return {"async": params["x"]}
`})
	p, rep := load(t, bundle, ModeSingle)
	if rep.Class != "AsyncOnly" {
		t.Fatalf("class = %q", rep.Class)
	}
	if got := mustCall(t, p, 1, `{"x":5}`, nil); got != `{"async":5}` {
		t.Fatalf("result = %s", got)
	}
}

func TestHarnessNoneResult(t *testing.T) {
	p, _ := load(t, writeBundle(t, map[string]string{"skill.py": `
from skillware.core.base_skill import BaseSkill
class N(BaseSkill):
    def execute(self, params):
        return None
`}), ModeSingle)
	if got := mustCall(t, p, 1, `{}`, nil); got != "null" {
		t.Fatalf("result = %s", got)
	}
}

func TestHarnessErrors(t *testing.T) {
	bundle := writeBundle(t, map[string]string{"skill.py": `
import math, os, sys
from skillware.core.base_skill import BaseSkill

class CustomError(Exception):
    pass

class Failing(BaseSkill):
    def execute(self, params):
        what = params["what"]
        if what == "raise":
            def inner():
                raise ValueError("bad input: " + "x" * 10000)
            inner()
        if what == "short":
            def inner():
                raise ValueError("short")
            inner()
        if what == "custom":
            raise CustomError("mine")
        if what == "exit":
            sys.exit(4)
        if what == "set":
            return {"s": {1, 2}}
        if what == "nan":
            return {"n": math.nan}
        if what == "ok":
            return "fine"
`})
	p, _ := load(t, bundle, ModeSession)
	cases := []struct {
		params, typ, msg, tb string
	}{
		{`{"what":"raise"}`, "ValueError", "bad input: xxx", "xxxx"},
		{`{"what":"short"}`, "ValueError", "short", "in inner"},
		{`{"what":"custom"}`, "skill.CustomError", "mine", "CustomError: mine"},
		{`{"what":"exit"}`, "SystemExit", "4", "SystemExit"},
		{`{"what":"set"}`, "ResultNotJSON", "set", ""},
		{`{"what":"nan"}`, "ResultNotJSON", "not JSON compliant", ""},
	}
	for i, c := range cases {
		_, err := call(t, p, uint64(i+1), c.params, nil)
		var se *errdefs.SkillError
		if !errors.As(err, &se) || errdefs.KindOf(err) != errdefs.Skill {
			t.Fatalf("%s: err = %v", c.params, err)
		}
		if se.Type != c.typ || !strings.Contains(se.Message, c.msg) || !strings.Contains(se.Traceback, c.tb) {
			t.Fatalf("%s: got type %q message %.200q traceback %.300q", c.params, se.Type, se.Message, se.Traceback)
		}
		if len(se.Traceback) > 4096 {
			t.Fatalf("%s: traceback %d bytes > max_traceback", c.params, len(se.Traceback))
		}
		if c.tb == "xxxx" && !strings.HasSuffix(strings.TrimSpace(se.Traceback), "xxxx") || strings.Contains(se.Traceback, "_run_call") || strings.Contains(se.Traceback, "_invoke") {
			t.Fatalf("traceback should keep its end and hide harness frames:\n%.600s", se.Traceback)
		}
	}
	// The session survives all of that.
	if got := mustCall(t, p, 10, `{"what":"ok"}`, nil); got != `"fine"` {
		t.Fatalf("result = %s", got)
	}
}

func TestHarnessLoadErrors(t *testing.T) {
	cases := []struct {
		name, src, typ string
		kind           errdefs.Kind
	}{
		{"none", "from skillware.core.base_skill import BaseSkill\nclass X: pass\n", "NoSkillClass", errdefs.Invalid},
		{"imported-only", "from skillware.core.base_skill import BaseSkill as B\n", "NoSkillClass", errdefs.Invalid},
		{"two", "from skillware.core.base_skill import BaseSkill\nclass A(BaseSkill): pass\nclass B(BaseSkill): pass\n", "SeveralSkillClasses", errdefs.Invalid},
		{"import", "import nonexistent_module_xyz\n", "ModuleNotFoundError", errdefs.Skill},
		{"raise", "raise RuntimeError('at import')\n", "RuntimeError", errdefs.Skill},
		{"exit", "import sys\nsys.exit(3)\n", "SystemExit", errdefs.Skill},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := startWorker(t, nil)
			_, err := p.Init(tctx(t, 20*time.Second), Init{Bundle: writeBundle(t, map[string]string{"skill.py": c.src}), Mode: ModeSingle})
			var le *LoadError
			if !errors.As(err, &le) || le.Type != c.typ || errdefs.KindOf(err) != c.kind {
				t.Fatalf("err = %v (%#v), kind %s", err, le, errdefs.KindOf(err))
			}
			if c.typ == "SeveralSkillClasses" && !strings.Contains(le.Message, "A, B") {
				t.Fatalf("message should list the classes: %q", le.Message)
			}
			if st, _ := p.Wait(); st.ExitCode() != 0 {
				t.Fatalf("worker exit = %v", st)
			}
		})
	}
}

func TestHarnessWorkerDeath(t *testing.T) {
	bundle := writeBundle(t, map[string]string{"skill.py": `
import os, sys
from skillware.core.base_skill import BaseSkill
class Die(BaseSkill):
    def execute(self, params):
        sys.stderr.write("about to die\n")
        sys.stderr.flush()
        if params["how"] == "exit":
            os._exit(3)
        os.kill(os.getpid(), 9)
`})
	for how, want := range map[string]string{"exit": "worker exited with code 3", "kill": "worker killed by signal 9 (SIGKILL)"} {
		p, _ := load(t, bundle, ModeSingle)
		_, err := call(t, p, 1, `{"how":"`+how+`"}`, nil)
		var se *errdefs.SkillError
		if !errors.As(err, &se) || se.Type != TypeWorkerExited || se.Message != want || !strings.Contains(se.Traceback, "about to die") {
			t.Fatalf("%s: err = %v (%+v)", how, err, se)
		}
	}
}

func TestHarnessPrintFlood(t *testing.T) {
	p, _ := load(t, writeBundle(t, map[string]string{"skill.py": `
from skillware.core.base_skill import BaseSkill
class Loud(BaseSkill):
    def execute(self, params):
        for i in range(100000):
            print("line %06d" % i)
        return 1
`}), ModeSingle)
	if got := mustCall(t, p, 1, `{}`, nil); got != "1" {
		t.Fatal(got)
	}
	p.Wait()
	out := p.Stdout.Bytes()
	if !p.Stdout.Truncated() || !strings.HasPrefix(string(out), "line 000000\n") ||
		!strings.HasSuffix(string(out), "\n[skillbox: output truncated, 1134464 more bytes]") {
		t.Fatalf("stdout: truncated=%v len=%d tail=%q", p.Stdout.Truncated(), len(out), out[len(out)-80:])
	}
}

const counterSkill = `
import os
from skillware.core.base_skill import BaseSkill
COUNT = 0
class Counter(BaseSkill):
    def execute(self, params):
        global COUNT
        COUNT += 1
        return {"count": COUNT, "pid": os.getpid()}
`

func TestHarnessSessionKeepsState(t *testing.T) {
	bundle := writeBundle(t, map[string]string{"skill.py": counterSkill})
	p, _ := load(t, bundle, ModeSession)
	for i := 1; i <= 3; i++ {
		var r struct{ Count int }
		json.Unmarshal([]byte(mustCall(t, p, uint64(i), `{}`, nil)), &r)
		if r.Count != i {
			t.Fatalf("call %d: count %d", i, r.Count)
		}
	}
	if st, err := p.Wait(); err != nil || st.ExitCode() != 0 {
		t.Fatalf("session worker should exit 0 on EOF: %v %v", st, err)
	}
	// Single mode: one call, then the worker is gone.
	p, _ = load(t, bundle, ModeSingle)
	if got := mustCall(t, p, 1, `{}`, nil); !strings.Contains(got, `"count":1`) {
		t.Fatal(got)
	}
	if _, err := call(t, p, 2, `{}`, nil); !errors.Is(err, errdefs.ErrSkill) {
		t.Fatalf("second call in single mode: %v", err)
	}
}

func TestHarnessRequirements(t *testing.T) {
	needYAML(t)
	p := startWorker(t, nil)
	// skill.py would fail to import: requirements are reported first anyway.
	_, err := p.Init(tctx(t, 20*time.Second), Init{Bundle: writeBundle(t, map[string]string{"skill.py": "import nonexistentpkg\n"}),
		Mode: ModeSingle, Requirements: []string{"x"}})
	if !isLoadError(err) {
		t.Fatalf("err = %v", err)
	}
	p2 := startWorker(t, nil)
	rep, err := p2.Init(tctx(t, 20*time.Second), Init{Bundle: writeBundle(t, map[string]string{"skill.py": plainSkill}),
		Mode: ModeSingle, Requirements: []string{"PyYAML", "pyyaml", "nonexistentpkg", "json"}})
	if err != nil {
		t.Fatal(err)
	}
	v := rep.Packages["PyYAML"]
	if v == nil || *v == "" {
		t.Fatalf("PyYAML: %v", rep.Packages)
	}
	if w := rep.Packages["pyyaml"]; w == nil || *w != *v {
		t.Fatalf("pyyaml should match PyYAML: %v", rep.Packages)
	}
	if m, ok := rep.Packages["nonexistentpkg"]; !ok || m != nil {
		t.Fatalf("nonexistentpkg: %v", rep.Packages)
	}
	if j := rep.Packages["json"]; j == nil || *j != "" {
		t.Fatalf("json (stdlib module, no distribution) should be \"\": %v", rep.Packages)
	}
}

func TestHarnessPrivateFDs(t *testing.T) {
	p, _ := load(t, writeBundle(t, map[string]string{"skill.py": `
import os, subprocess
from skillware.core.base_skill import BaseSkill
def links(pid):
    d = "/proc/%s/fd" % pid
    out = {}
    for n in os.listdir(d):
        try:
            out[int(n)] = os.readlink(os.path.join(d, n))
        except OSError:
            pass
    return out
class FDs(BaseSkill):
    def execute(self, params):
        mine = links("self")
        private = {v for k, v in mine.items() if k in (100, 101)}
        proc = subprocess.Popen(["/bin/sleep", "5"], close_fds=False)
        child = links(proc.pid)
        proc.kill(); proc.wait()
        return {"private": len(private), "leaked": sorted(set(child.values()) & private),
                "3": 3 in mine, "4": 4 in mine}
`}), ModeSingle)
	got := mustCall(t, p, 1, `{}`, nil)
	if got != `{"private":2,"leaked":[],"3":false,"4":false}` {
		t.Fatalf("fds: %s\n%s", got, p.Stdout.Bytes())
	}
}

func TestHarnessNoArgInit(t *testing.T) {
	p, _ := load(t, writeBundle(t, map[string]string{"skill.py": `
from skillware.core.base_skill import BaseSkill
class NoArgs(BaseSkill):
    def __init__(self):
        self.ready = True
    def execute(self, params):
        return {"ready": self.ready, "key": self.credential("K")}
`}), ModeSingle)
	if got := mustCall(t, p, 1, `{}`, map[string]string{"K": "v"}); got != `{"ready":true,"key":"v"}` {
		t.Fatal(got)
	}
}

func TestHarnessFatalAndTimeout(t *testing.T) {
	p := startWorker(t, nil)
	_, err := p.Init(tctx(t, 20*time.Second), Init{Bundle: "/nonexistent", Mode: "bogus"})
	var se *errdefs.SkillError
	if !errors.As(err, &se) || se.Type != TypeHarnessError || !strings.Contains(se.Message, "bogus") {
		t.Fatalf("err = %v", err)
	}
	if st, _ := p.Wait(); st.ExitCode() != 70 {
		t.Fatalf("harness failure should exit 70: %v", st)
	}

	p, _ = load(t, writeBundle(t, map[string]string{"skill.py": `
import time
from skillware.core.base_skill import BaseSkill
class Slow(BaseSkill):
    def execute(self, params):
        time.sleep(30)
`}), ModeSingle)
	start := time.Now()
	_, err = p.Call(tctx(t, 300*time.Millisecond), 1, nil, nil)
	if errdefs.KindOf(err) != errdefs.Timeout || time.Since(start) > 5*time.Second {
		t.Fatalf("err = %v after %v", err, time.Since(start))
	}
	p.Kill()
	if st, _ := p.Wait(); st.ExitCode() != -1 {
		t.Fatalf("killed worker: %v", st)
	}
}

// A descriptor the host process leaked (no close-on-exec) must not reach
// the skill: the harness closes everything but stdio and its private pair.
func TestHarnessClosesInheritedFDs(t *testing.T) {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const leaked = 77                                            // high, so it cannot be confused with listdir's own fd
	if err := syscall.Dup3(int(f.Fd()), leaked, 0); err != nil { // no O_CLOEXEC: inherited
		t.Fatal(err)
	}
	defer syscall.Close(leaked)
	p, _ := load(t, writeBundle(t, map[string]string{"skill.py": `
import os
from skillware.core.base_skill import BaseSkill
class FDs(BaseSkill):
    def execute(self, params):
        return sorted(int(n) for n in os.listdir("/proc/self/fd"))
`}), ModeSingle)
	got := mustCall(t, p, 1, `{}`, nil)
	var fds []int
	if err := json.Unmarshal([]byte(got), &fds); err != nil {
		t.Fatal(err)
	}
	low := 0
	for _, fd := range fds {
		if fd == leaked {
			t.Fatalf("inherited fd %d reached the skill (fds %v)", leaked, fds)
		}
		if fd > 2 && fd < 100 {
			low++
		}
	}
	if low > 1 { // one is listdir's own
		t.Errorf("unexpected descriptors in the worker: %v", fds)
	}
}

// validate_params speaks Skillware's wording (skills match on it) and, with
// or without the jsonschema package, honours type, required and
// additionalProperties.
func TestHarnessValidateParamsWording(t *testing.T) {
	bundle := writeBundle(t, map[string]string{"skill.py": `
from skillware.core.base_skill import BaseSkill, SkillwareParamValidationError

class V(BaseSkill):
    @property
    def manifest(self):
        return {"name": "v", "parameters": {"type": "object", "required": ["x"],
                "additionalProperties": False,
                "properties": {"x": {"type": "integer"}, "tags": {"type": "array", "items": {"type": "string"}}}}}

    def execute(self, params):
        out = []
        for p in ({"x": "a"}, {}, {"x": 1, "y": 2}, {"x": 1, "tags": ["a", 3]}, [1], {"x": 1}):
            try:
                out.append(self.validate_params(p))
            except SkillwareParamValidationError as e:
                out.append(str(e))
        return out
`})
	p, _ := load(t, bundle, ModeSingle)
	got := mustCall(t, p, 1, `{}`, nil)
	var msgs []any
	if err := json.Unmarshal([]byte(got), &msgs); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`Skill 'v' parameter validation failed at 'x': 'a' is not of type 'integer'`,
		`Skill 'v' parameter validation failed at '(root)': 'x' is a required property`,
		`Skill 'v' parameter validation failed at '(root)': Additional properties are not allowed ('y' was unexpected)`,
		`Skill 'v' parameter validation failed at 'tags.1': 3 is not of type 'string'`,
		`Skill 'v' expects parameter arguments as a JSON object (dict), got list.`,
	}
	for i, w := range want {
		if s, _ := msgs[i].(string); s != w {
			t.Errorf("case %d: got %q, want %q", i, msgs[i], w)
		}
	}
	if msgs[5] != true {
		t.Errorf("valid params: got %v, want true", msgs[5])
	}
}

// TestHarnessLargeFrames: params and results of megabytes cross whole
// (the request read into one buffer, the reply written header and payload
// apart, both pipes grown), in session mode call after call.
func TestHarnessLargeFrames(t *testing.T) {
	p, _ := load(t, writeBundle(t, map[string]string{"skill.py": plainSkill}), ModeSession)
	p.Conn.SetMaxResult(8 << 20)
	for i, n := range []int{100, 70_000, 1 << 20, 3 << 20} {
		data := strings.Repeat("é<", n/3)
		params := `{"data":"` + data + `"}`
		got := mustCall(t, p, uint64(i+1), params, nil)
		if got != `{"echo":`+params+`}` {
			t.Fatalf("%d bytes: result of %d bytes, %.80q…", len(params), len(got), got)
		}
	}
}

// A session worker's output never ends: SettleOutput is what tells the
// host that a call's output is all there. Each call's capture then holds
// exactly what the skill wrote before it returned (through sys.stdout and
// straight to the descriptors), and the import's output goes with the
// start.
func TestSessionOutputSettles(t *testing.T) {
	bundle := writeBundle(t, map[string]string{"skill.py": `
import os, sys
from skillware.core.base_skill import BaseSkill

print("imported")

class Chatty(BaseSkill):
    def execute(self, params):
        n = params["x"]
        for _ in range(500):
            sys.stdout.write("call %d out\n" % n)
            os.write(2, b"call %d err\n" % n)
        return {}
`})
	p, _ := load(t, bundle, ModeSession)
	if err := p.SettleOutput(tctx(t, 10*time.Second)); err != nil {
		t.Fatalf("after init: %v", err)
	}
	if got := string(p.Stdout.Bytes()); got != "imported\n" {
		t.Fatalf("import's output %q, want %q", got, "imported\n")
	}
	for i := 1; i <= 5; i++ {
		p.Stdout.Reset()
		p.Stderr.Reset()
		mustCall(t, p, uint64(i), fmt.Sprintf(`{"x": %d}`, i), nil)
		if err := p.SettleOutput(tctx(t, 10*time.Second)); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		for _, c := range []struct {
			name string
			got  []byte
			line string
		}{{"stdout", p.Stdout.Bytes(), fmt.Sprintf("call %d out\n", i)}, {"stderr", p.Stderr.Bytes(), fmt.Sprintf("call %d err\n", i)}} {
			if want := strings.Repeat(c.line, 500); string(c.got) != want {
				t.Errorf("call %d: %s has %d bytes, %d of its own lines; want %d", i, c.name, len(c.got), strings.Count(string(c.got), c.line), len(want))
			}
		}
	}
}

// An exception with a huge message is still reported as the skill's
// exception, its message cut to 64 KiB: before, the error reply outgrew
// the frame cap and the call failed as "output limit exceeded" (at import:
// a protocol violation).
func TestHugeExceptionMessageIsCut(t *testing.T) {
	bundle := writeBundle(t, map[string]string{"skill.py": `
from skillware.core.base_skill import BaseSkill

class Big(BaseSkill):
    def execute(self, params):
        raise ValueError("x" * 2000000)
`})
	p, _ := load(t, bundle, ModeSession)
	_, err := call(t, p, 1, `{"x": 1}`, nil)
	var se *errdefs.SkillError
	if !errors.As(err, &se) || se.Type != "ValueError" {
		t.Fatalf("err = %.200v, want the skill's ValueError", err)
	}
	if want := strings.Repeat("x", 64<<10) + "... [1934464 more bytes]"; se.Message != want {
		t.Errorf("message of %d bytes ending %q, want %d bytes", len(se.Message), se.Message[max(0, len(se.Message)-30):], len(want))
	}
}

// patchedExitSkill replaces os._exit with one that exits with code 42: the
// harness must end its process with its own binding, and so with code 0.
const patchedExitSkill = `
import os
from skillware.core.base_skill import BaseSkill
class Patch(BaseSkill):
    def execute(self, params):
        real = os._exit
        os._exit = lambda code=0: real(42)
        return {"patched": True}
`

// TestHarnessExitNotPatchable: a single-mode worker whose skill replaced
// os._exit still exits through the harness's own, with code 0 (the
// replacement would have run skill code after the reply).
func TestHarnessExitNotPatchable(t *testing.T) {
	p, _ := load(t, writeBundle(t, map[string]string{"skill.py": patchedExitSkill}), ModeSingle)
	if got := mustCall(t, p, 1, `{"x":1}`, nil); got != `{"patched":true}` {
		t.Fatalf("result %s", got)
	}
	st, err := p.Wait()
	if err != nil || st.ExitCode() != 0 {
		t.Fatalf("worker ended with %v, %v; want code 0 (the skill's os._exit ran)", st, err)
	}
}
