//go:build linux

package worker

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
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
	return startZygoteArgv(t, Argv(testPython), bundle, scratch, attr)
}

func startZygoteArgv(t *testing.T, argv []string, bundle, scratch string, attr *syscall.SysProcAttr) (*testZygote, *Reply) {
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
	rep, err := z.Init(tctx(t, 20*time.Second), Init{Bundle: bundle, Scratch: scratch, MaxTraceback: 4096})
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

func TestZygoteFreshChildren(t *testing.T) {
	bundle := writeBundle(t, map[string]string{"skill.py": `
import os
from skillware.core.base_skill import BaseSkill
COUNT = 0
print("imported once")
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
`})
	z, rep := startZygote(t, bundle, "", nil)
	if rep.Class != "Counter" || rep.Dumpable == nil || *rep.Dumpable {
		t.Fatalf("ready = %+v", rep)
	}
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
		if out := string(c.Stdout.Bytes()); !strings.HasPrefix(out, "call in ") || strings.Contains(out, "imported") {
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
	if got := string(z.stderr.Bytes()); got != "imported once\n" {
		t.Fatalf("zygote output %q", got)
	}
}

func TestZygotePreForkAndAbandon(t *testing.T) {
	z, _ := startZygote(t, writeBundle(t, map[string]string{"skill.py": counterSkill}), "", nil)
	ctx := tctx(t, 20*time.Second)
	a, err := z.Fork(ctx, 1, 1024)
	if err != nil {
		t.Fatal(err)
	}
	b, err := z.Fork(ctx, 2, 1024) // pre-forked while a is idle
	if err != nil {
		t.Fatal(err)
	}
	abandoned, err := z.Fork(ctx, 3, 1024)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*ZygoteChild{b, a} { // out of order on purpose
		res, err := c.Call(ctx, nil, nil)
		if err != nil || !strings.Contains(string(res), `"count":1`) {
			t.Fatalf("child %d: %s %v", c.ID, res, err)
		}
		if st, err := c.Wait(ctx); err != nil || st != (ExitStatus{}) {
			t.Fatalf("child %d wait: %+v %v", c.ID, st, err)
		}
	}
	abandoned.Close() // EOF on its request pipe: it exits without a call
	if st, err := abandoned.Wait(ctx); err != nil || st.Code != 0 {
		t.Fatalf("abandoned: %+v %v", st, err)
	}
	if _, err := z.Fork(ctx, 1, 1024); err != nil { // ids are free again once exited
		t.Fatal(err)
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

func TestZygoteLoadError(t *testing.T) {
	needPython(t)
	host, child, _ := ZygotePair()
	cmd := exec.Command(testPython, Argv(testPython)[1:]...)
	cmd.ExtraFiles = []*os.File{child}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	child.Close()
	z, _ := NewZygote(host)
	defer z.Close()
	_, err := z.Init(tctx(t, 20*time.Second), Init{Bundle: writeBundle(t, map[string]string{"skill.py": "x = 1\n"})})
	if errdefs.KindOf(err) != errdefs.Invalid {
		t.Fatalf("err = %v", err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("zygote exit after load error: %v", err)
	}
}

// TestZygotePid1 runs the zygote as pid 1 of a new pid namespace (needs
// root) and checks that a background process a call leaves behind is killed
// before exited is reported. With the namespace's own /proc a pre-forked
// child survives the cleanup; without it, it is killed and reported.
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
				z, _ = startZygoteArgv(t, append([]string{"unshare", "--pid", "--fork", "--mount-proc"}, Argv(testPython)...), bundle, "", nil)
			} else {
				z, _ = startZygote(t, bundle, "", &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID})
			}
			ctx := tctx(t, 20*time.Second)
			pre, err := z.Fork(ctx, 100, 1024)
			if err != nil {
				t.Fatal(err)
			}
			if res, _, _, err := forkCall(t, z, 1, `{}`); err != nil || res == "1" {
				t.Fatalf("call: %s %v", res, err)
			}
			if sleepers := findCmdline(marker); len(sleepers) != 0 {
				t.Fatalf("background process survived the call: %v", sleepers)
			}
			res, err := pre.Call(ctx, nil, nil)
			st, _ := pre.Wait(ctx)
			if ownProc && err != nil {
				t.Fatalf("pre-forked child killed by the cleanup: %s %v", res, err)
			}
			if !ownProc && (err == nil || st.Signal != 9) {
				t.Fatalf("without its /proc the zygote should kill and report the pre-forked child: %s %v %+v", res, err, st)
			}
			if sleepers := findCmdline(marker); len(sleepers) != 0 {
				t.Fatalf("background process survived: %v", sleepers)
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
