//go:build linux

package worker

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
)

type testZygote struct {
	*Zygote
	cmd    *exec.Cmd
	stderr *Capture
}

func startZygote(t *testing.T, bundle, scratch string, attr *syscall.SysProcAttr) (*testZygote, *Reply) {
	t.Helper()
	return startZygoteArgv(t, Argv(testPython), Init{Bundle: bundle, Scratch: scratch}, attr)
}

func startZygoteArgv(t *testing.T, argv []string, in Init, attr *syscall.SysProcAttr) (*testZygote, *Reply) {
	t.Helper()
	needPython(t)
	host, child, err := ZygotePair()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8"}
	cmd.ExtraFiles = []*os.File{child}
	stderr := NewCapture(64 << 10)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	cmd.SysProcAttr = attr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	child.Close()
	z, err := NewZygote(host)
	if err != nil {
		t.Fatal(err)
	}
	tz := &testZygote{z, cmd, stderr}
	t.Cleanup(func() {
		z.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			t.Errorf("zygote did not exit on control EOF")
		}
	})
	in.MaxTraceback = 4096
	rep, err := z.Init(tctx(t, 20*time.Second), in)
	if err != nil {
		t.Fatalf("zygote init: %v (stderr %s)", err, stderr.Bytes())
	}
	return tz, rep
}

func forkCall(t *testing.T, z *testZygote, id uint64, params string) (string, ExitStatus, *ZygoteChild, error) {
	t.Helper()
	ctx := tctx(t, 20*time.Second)
	c, err := z.Fork(ctx, id, 64<<10)
	if err != nil {
		t.Fatalf("fork %d: %v (zygote stderr %s)", id, err, z.stderr.Bytes())
	}
	res, cerr := c.Call(ctx, json.RawMessage(params), nil)
	st, err := c.Wait(ctx)
	if err != nil {
		t.Fatalf("wait %d: %v", id, err)
	}
	return string(res), st, c, cerr
}

const importOnceSkill = `
import os
from skillware.core.base_skill import BaseSkill
COUNT = 0
print("imported")
class Counter(BaseSkill):
    def execute(self, params):
        global COUNT
        COUNT += 1
        print("call in", os.getpid())
        if params.get("exit"):
            os._exit(params["exit"])
        if params.get("kill"):
            os.kill(os.getpid(), 9)
        return {"count": COUNT, "pid": os.getpid()}
`

// TestZygoteFreshChildren: every call runs in a fresh child. By default
// the skill is imported in each child, never in the zygote; warm, it is
// imported once, in the zygote.
func TestZygoteFreshChildren(t *testing.T) {
	for _, warm := range []bool{false, true} {
		t.Run(map[bool]string{false: "default", true: "warm"}[warm], func(t *testing.T) {
			z, rep := startZygoteArgv(t, Argv(testPython), Init{Bundle: writeBundle(t, map[string]string{"skill.py": importOnceSkill}), Warm: warm}, nil)
			wantClass := map[bool]string{false: "", true: "Counter"}[warm]
			if rep.Class != wantClass || rep.Dumpable == nil || *rep.Dumpable {
				t.Fatalf("ready = %+v", rep)
			}
			wantOut := map[bool]string{false: "imported\ncall in ", true: "call in "}[warm]
			pids := map[int]bool{z.cmd.Process.Pid: true}
			for i := uint64(1); i <= 3; i++ {
				res, st, c, err := forkCall(t, z, i, `{}`)
				if err != nil {
					t.Fatalf("call %d: %v", i, err)
				}
				var r struct{ Count, PID int }
				json.Unmarshal([]byte(res), &r)
				if r.Count != 1 || r.PID != c.PID || pids[r.PID] {
					t.Fatalf("call %d: %s (child pid %d, seen %v)", i, res, c.PID, pids)
				}
				pids[r.PID] = true
				if st != (ExitStatus{}) {
					t.Fatalf("call %d: status %+v", i, st)
				}
				if out := string(c.Stdout.Bytes()); !strings.HasPrefix(out, wantOut) || strings.Count(out, "imported") > 1 {
					t.Fatalf("call %d stdout %q", i, out)
				}
			}
			_, st, _, err := forkCall(t, z, 4, `{"exit":3}`)
			var se *errdefs.SkillError
			if !errors.As(err, &se) || se.Type != TypeWorkerExited || se.Message != "worker exited with code 3" || st.Code != 3 {
				t.Fatalf("os._exit(3): %v, status %+v", err, st)
			}
			_, st, _, err = forkCall(t, z, 5, `{"kill":1}`)
			if !errors.As(err, &se) || se.Message != "worker killed by signal 9 (SIGKILL)" || st.Signal != 9 {
				t.Fatalf("SIGKILL: %v, status %+v", err, st)
			}
			// Still serving.
			if res, _, _, err := forkCall(t, z, 6, `{}`); err != nil || !strings.Contains(res, `"count":1`) {
				t.Fatalf("after deaths: %s %v", res, err)
			}
			if got, want := string(z.stderr.Bytes()), map[bool]string{false: "", true: "imported\n"}[warm]; got != want {
				t.Fatalf("zygote output %q, want %q", got, want)
			}
		})
	}
}

// TestZygoteImportsNoSkillCode: the zygote's own interpreter never runs the
// skill's code, nor a .pth file of an untrusted site directory; it
// pre-imports the standard-library modules the skill's files name, and
// never a name the bundle defines itself.
func TestZygoteImportsNoSkillCode(t *testing.T) {
	// skill.py's first line snapshots sys.modules: what the child had from
	// the zygote (copied at fork) before the skill imported anything.
	bundle := writeBundle(t, map[string]string{
		"skill.py": `import sys; HAD = sorted(sys.modules)
import json, calendar
import email.mime.text as emt, decimal
from fractions import Fraction
from skillware.core.base_skill import BaseSkill
class Probe(BaseSkill):
    def execute(self, params):
        return HAD
`,
		"calendar.py": "# the bundle's own module of a stdlib name\n",
	})
	z, _ := startZygote(t, bundle, "", nil)
	res, _, _, err := forkCall(t, z, 1, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	var had []string
	if err := json.Unmarshal([]byte(res), &had); err != nil {
		t.Fatal(err)
	}
	mods := map[string]bool{}
	for _, m := range had {
		mods[m] = true
	}
	for _, m := range []string{"json", "email", "decimal", "fractions"} {
		if !mods[m] {
			t.Errorf("zygote did not pre-import %s (had %v)", m, had)
		}
	}
	for _, m := range []string{"calendar", "antigravity"} {
		if mods[m] {
			t.Errorf("zygote imported %s", m)
		}
	}
}

// TestZygotePreimportsFromEnvironment: the standard-library modules that
// an environment's .pth files and the third-party packages the skill
// imports name (read, never run) are pre-imported; the packages are not.
func TestZygotePreimportsFromEnvironment(t *testing.T) {
	site := t.TempDir()
	write := func(rel, text string) {
		p := filepath.Join(site, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("hook.pth", "import os;exec(\"try:\\n import pthdep\\nexcept Exception: pass\")\n")
	write("pthdep.py", "import wave\nraise SystemExit('pthdep ran in the zygote')\n")
	write("thirdparty/__init__.py", "from . import inner\nimport sys\nsys.exit('thirdparty ran in the zygote')\n")
	write("thirdparty/inner.py", "import chunk as _c, colorsys\n")
	bundle := writeBundle(t, map[string]string{"skill.py": `import sys; HAD = sorted(sys.modules)
try:
    import thirdparty
except BaseException:
    pass
from skillware.core.base_skill import BaseSkill
class Probe(BaseSkill):
    def execute(self, params):
        return HAD
`})
	z, _ := startZygoteArgv(t, Argv(testPython), Init{Bundle: bundle, SitePaths: []string{site}}, nil)
	res, _, _, err := forkCall(t, z, 1, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	var had []string
	json.Unmarshal([]byte(res), &had)
	mods := map[string]bool{}
	for _, m := range had {
		mods[m] = true
	}
	for _, m := range []string{"wave", "chunk", "colorsys"} {
		if !mods[m] {
			t.Errorf("zygote did not pre-import %s", m)
		}
	}
	for _, m := range []string{"pthdep", "thirdparty", "thirdparty.inner"} {
		if mods[m] {
			t.Errorf("zygote imported %s, which the operator did not trust", m)
		}
	}
}

func TestZygotePreForkOneAtATime(t *testing.T) {
	z, _ := startZygote(t, writeBundle(t, map[string]string{"skill.py": counterSkill}), "", nil)
	ctx := tctx(t, 20*time.Second)
	a, err := z.Fork(ctx, 1, 1024)
	if err != nil {
		t.Fatal(err)
	}
	// A call's process and the next child never exist at once.
	var se *errdefs.SkillError
	if _, err := z.Fork(ctx, 2, 1024); !errors.As(err, &se) || !strings.Contains(se.Message, "ZygoteBusy") {
		t.Fatalf("second fork while a child lives: %v", err)
	}
	res, err := a.Call(ctx, nil, nil)
	if err != nil || !strings.Contains(string(res), `"count":1`) {
		t.Fatalf("child: %s %v", res, err)
	}
	if st, err := a.Wait(ctx); err != nil || st != (ExitStatus{}) {
		t.Fatalf("child wait: %+v %v", st, err)
	}
	abandoned, err := z.Fork(ctx, 3, 1024)
	if err != nil {
		t.Fatal(err)
	}
	abandoned.Close() // EOF on its request pipe: it exits without a call
	if st, err := abandoned.Wait(ctx); err != nil || st.Code != 0 {
		t.Fatalf("abandoned: %+v %v", st, err)
	}
	if _, err := z.Fork(ctx, 1, 1024); err != nil { // ids are free again once exited
		t.Fatal(err)
	}
}

// TestZygoteChildClosesItsPipes: a child that was waited for leaves no
// descriptor open in the host, without help from the garbage collector
// (which would close a forgotten *os.File only when it next runs).
func TestZygoteChildClosesItsPipes(t *testing.T) {
	z, _ := startZygote(t, writeBundle(t, map[string]string{"skill.py": counterSkill}), "", nil)
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	fds := func() int { e, _ := os.ReadDir("/proc/self/fd"); return len(e) }
	forkCall(t, z, 1, `{}`) // whatever the first call sets up once
	before := fds()
	for id := uint64(2); id < 12; id++ {
		if res, _, _, err := forkCall(t, z, id, `{}`); err != nil {
			t.Fatalf("call %d: %s %v", id, res, err)
		}
	}
	if after := fds(); after > before {
		t.Fatalf("descriptors: %d after the first call, %d after ten more", before, after)
	}
}

func TestZygoteScratchEmptied(t *testing.T) {
	scratch := t.TempDir()
	outside := filepath.Join(t.TempDir(), "keep.txt")
	os.WriteFile(outside, []byte("keep"), 0o644)
	z, _ := startZygote(t, writeBundle(t, map[string]string{"skill.py": `
import os
from skillware.core.base_skill import BaseSkill
class Scratch(BaseSkill):
    def execute(self, params):
        d = params["dir"]
        before = sorted(os.listdir(d))
        os.makedirs(os.path.join(d, "ro", "deep"))
        open(os.path.join(d, "ro", "deep", "f"), "w").write("x")
        open(os.path.join(d, "top.txt"), "w").write("x")
        os.symlink(params["outside"], os.path.join(d, "link"))
        os.symlink(os.path.dirname(params["outside"]), os.path.join(d, "dirlink"))
        os.chmod(os.path.join(d, "ro", "deep"), 0o500)
        os.chmod(os.path.join(d, "ro"), 0o500)
        return before
`}), scratch, nil)
	params := `{"dir":"` + scratch + `","outside":"` + outside + `"}`
	for i := uint64(1); i <= 2; i++ {
		res, _, _, err := forkCall(t, z, i, params)
		if err != nil || res != "[]" {
			t.Fatalf("call %d: scratch not empty at start: %s %v", i, res, err)
		}
		if ents, _ := os.ReadDir(scratch); len(ents) != 0 {
			t.Fatalf("scratch not emptied after call %d: %v", i, ents)
		}
	}
	if b, err := os.ReadFile(outside); err != nil || string(b) != "keep" {
		t.Fatalf("file behind a symlink was touched: %q %v", b, err)
	}
}

// TestZygoteWaitAfterRetire: a zygote that reports a call's exit and then
// ends (retired by a failed cleanup) still gives Wait the call's status,
// even when Wait runs after both happened (as on a loaded machine): both of
// its channels are then ready and a select picks either. Each round is one
// such zygote; before the fix, each round failed half the time.
func TestZygoteWaitAfterRetire(t *testing.T) {
	bundle := writeBundle(t, map[string]string{"skill.py": `
import os
from skillware.core.base_skill import BaseSkill
class Gone(BaseSkill):
    def execute(self, params):
        os.rmdir(params["dir"])
        return "removed"
`})
	for round := 0; round < 8; round++ {
		scratch := filepath.Join(t.TempDir(), "scratch")
		os.Mkdir(scratch, 0o755)
		z, _ := startZygote(t, bundle, scratch, nil)
		ctx := tctx(t, 20*time.Second)
		c, err := z.Fork(ctx, 1, 64<<10)
		if err != nil {
			t.Fatalf("fork: %v", err)
		}
		if res, err := c.Call(ctx, json.RawMessage(`{"dir":"`+scratch+`"}`), nil); err != nil || string(res) != `"removed"` {
			t.Fatalf("call: %s %v", res, err)
		}
		select {
		case <-z.Done():
		case <-ctx.Done():
			t.Fatal("the zygote serves on after a failed cleanup")
		}
		if st, err := c.Wait(ctx); err != nil || st != (ExitStatus{}) {
			t.Fatalf("round %d: Wait after the zygote ended: %+v %v", round, st, err)
		}
	}
}

// TestZygoteRetiresOnFailedCleanup: a cleanup that cannot finish (here the
// scratch folder is gone) ends the zygote after it reported the call: it
// never serves another call in an unknown state.
func TestZygoteRetiresOnFailedCleanup(t *testing.T) {
	scratch := filepath.Join(t.TempDir(), "scratch")
	os.Mkdir(scratch, 0o755)
	z, _ := startZygote(t, writeBundle(t, map[string]string{"skill.py": `
import os
from skillware.core.base_skill import BaseSkill
class Gone(BaseSkill):
    def execute(self, params):
        os.rmdir(params["dir"])
        return "removed"
`}), scratch, nil)
	res, st, _, err := forkCall(t, z, 1, `{"dir":"`+scratch+`"}`)
	if err != nil || res != `"removed"` || st != (ExitStatus{}) {
		t.Fatalf("call: %s %+v %v", res, st, err)
	}
	// The zygote exits; its stderr is complete once the process is
	// reaped (Done only says the control socket closed).
	exited := make(chan struct{})
	go func() { z.cmd.Wait(); close(exited) }()
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		t.Fatal("the zygote serves on after a failed cleanup")
	}
	if log := string(z.stderr.Bytes()); !strings.Contains(log, "zygote retired: emptying "+scratch+" failed") {
		t.Errorf("zygote stderr %q", log)
	}
}

func TestZygoteLoadError(t *testing.T) {
	needPython(t)
	bundle := writeBundle(t, map[string]string{"skill.py": "x = 1\n"})
	for _, warm := range []bool{false, true} {
		host, child, _ := ZygotePair()
		cmd := exec.Command(testPython, Argv(testPython)[1:]...)
		cmd.ExtraFiles = []*os.File{child}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		child.Close()
		z, _ := NewZygote(host)
		ctx := tctx(t, 20*time.Second)
		_, err := z.Init(ctx, Init{Bundle: bundle, Warm: warm})
		if !warm {
			// The zygote never imports the skill: its child reports.
			if err != nil {
				t.Fatalf("init: %v", err)
			}
			c, ferr := z.Fork(ctx, 1, 1024)
			if ferr != nil {
				t.Fatal(ferr)
			}
			_, err = c.Ready(ctx)
			if _, cerr := c.Call(ctx, nil, nil); cerr != err {
				t.Errorf("Call after a load error: %v, want the load error", cerr)
			}
			c.Wait(ctx)
			z.Close()
		}
		if errdefs.KindOf(err) != errdefs.Invalid {
			t.Fatalf("warm=%v: err = %v", warm, err)
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("zygote exit after load error: %v", err)
		}
		z.Close()
	}
}

// TestZygotePid1 runs the zygote as pid 1 of a new pid namespace (needs
// root) and checks that a background process a call leaves behind is killed
// before exited is reported, whether /proc is the namespace's or not.
func TestZygotePid1(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root for a pid namespace (the linux backend tests this too)")
	}
	for _, ownProc := range []bool{true, false} {
		t.Run(map[bool]string{true: "own-proc", false: "host-proc"}[ownProc], func(t *testing.T) {
			marker := "4242.4242"
			bundle := writeBundle(t, map[string]string{"skill.py": `
import os, subprocess
from skillware.core.base_skill import BaseSkill
class Bg(BaseSkill):
    def execute(self, params):
        subprocess.Popen(["/bin/sh", "-c", "exec sleep ` + marker + `"], start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return os.getpid()
`})
			var z *testZygote
			if ownProc {
				if _, err := exec.LookPath("unshare"); err != nil {
					t.Skip("skipping: no unshare(1)")
				}
				z, _ = startZygoteArgv(t, append([]string{"unshare", "--pid", "--fork", "--mount-proc"}, Argv(testPython)...), Init{Bundle: bundle}, nil)
			} else {
				z, _ = startZygote(t, bundle, "", &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID})
			}
			for i := uint64(1); i <= 2; i++ {
				if res, _, _, err := forkCall(t, z, i, `{}`); err != nil || res == "1" {
					t.Fatalf("call %d: %s %v", i, res, err)
				}
				if sleepers := findCmdline(marker); len(sleepers) != 0 {
					t.Fatalf("background process survived call %d: %v", i, sleepers)
				}
			}
		})
	}
}

func findCmdline(s string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), s) {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestZygoteChildExitNotPatchable: a call child whose skill replaced
// os._exit still exits through the harness's own, with code 0.
func TestZygoteChildExitNotPatchable(t *testing.T) {
	for _, warm := range []bool{false, true} {
		z, _ := startZygoteArgv(t, Argv(testPython), Init{Bundle: writeBundle(t, map[string]string{"skill.py": patchedExitSkill}), Warm: warm}, nil)
		res, st, _, err := forkCall(t, z, 1, `{}`)
		if err != nil || res != `{"patched":true}` {
			t.Fatalf("warm %v: %s, %v", warm, res, err)
		}
		if st != (ExitStatus{}) {
			t.Fatalf("warm %v: child ended with %+v; want code 0 (the skill's os._exit ran)", warm, st)
		}
	}
}
