//go:build linux

package linux

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// probeSkill runs a list of named Python snippets inside the jail; each
// snippet's value (or exception) lands in the result under its name.
const probeBody = `        out = {}
        def t(name, fn):
            import time
            t0 = time.monotonic()
            try:
                out[name] = fn()
            except BaseException as e:
                out[name] = "ERR " + type(e).__name__ + ": " + str(e)
            if time.monotonic() - t0 > 0.2:
                print("slow", name, time.monotonic() - t0, file=sys.stderr)
        import socket, ctypes, ctypes.util
        libc = ctypes.CDLL(None, use_errno=True)
        def sysc(nr, *a):
            r = libc.syscall(nr, *a)
            return "ok" if r >= 0 else "errno %d" % ctypes.get_errno()
        t("shadow", lambda: open("/etc/shadow").read()[:10])
        t("root", lambda: os.listdir("/root"))
        t("write_skill", lambda: open("/skill/x", "w").write("x"))
        t("write_root", lambda: open("/x", "w").write("x"))
        t("write_scratch", lambda: open("/scratch/x", "w").write("x"))
        def conn(fam, addr):
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.settimeout(1)
            s.connect(addr)
            return "connected"
        t("tcp4", lambda: conn(socket.AF_INET, ("127.0.0.1", PORT)))
        t("tcp6", lambda: conn(socket.AF_INET6, ("::1", PORT)))
        t("ext", lambda: conn(socket.AF_INET, ("1.1.1.1", 53)))
        t("procs", lambda: sorted(int(p) for p in os.listdir("/proc") if p.isdigit()))
        t("env", lambda: dict(os.environ))
        t("uid", lambda: (os.getuid(), os.geteuid(), os.getgid()))
        t("caps", lambda: [l for l in open("/proc/self/status") if l.startswith(("CapEff", "CapBnd", "NoNewPrivs", "Seccomp:"))])
        t("ptrace", lambda: sysc(101, 0, 0, 0, 0))
        t("mount", lambda: sysc(165, b"none", b"/scratch", b"tmpfs", 0, 0))
        t("unshare", lambda: sysc(272, 0x10000000))
        t("keyctl", lambda: sysc(250, 0, 0, 0, 0))
        t("bpf", lambda: sysc(321, 0, 0, 0))
        t("io_uring", lambda: sysc(425, 1, 0))
        t("raw", lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, 1) and "opened")
        t("packet", lambda: socket.socket(17, socket.SOCK_RAW, 0) and "opened")
        t("sysrq", lambda: open("/proc/sysrq-trigger", "w").write("h"))
        t("sysfs", lambda: os.listdir("/sys"))
        t("devs", lambda: sorted(d for d in ("null", "zero", "random", "urandom", "tty", "shm", "console", "kmsg", "mem", "vda", "ptmx", "net") if os.path.exists("/dev/" + d)))
        t("hostname", lambda: socket.gethostname())
        t("kill1", lambda: os.kill(1, 9) or "sent")
        return out`

func TestContainment(t *testing.T) {
	// A host listener the skill must not reach.
	ln, err := listenBoth(t)
	if err != nil {
		t.Fatal(err)
	}
	body := strings.ReplaceAll(probeBody, "PORT", ln)
	for _, mode := range execModes {
		t.Run(mode, func(t *testing.T) {
			sb := openBox(t, Options{Exec: mode}, sandbox.Spec{BundleDir: bundle(t, body),
				Env: map[string]string{"GRANTED": "yes", "PATH": "/evil"}})
			res, err := call(t, sb, nil)
			if err != nil {
				t.Fatal(err)
			}
			v := value(t, res)
			t.Logf("stderr: %s", res.Stderr)
			denied := func(name string) {
				t.Helper()
				s, _ := v[name].(string)
				if !strings.HasPrefix(s, "ERR") && !strings.HasPrefix(s, "errno") {
					t.Errorf("%s: not denied: %v", name, v[name])
				}
			}
			for _, n := range []string{"shadow", "root", "write_skill", "write_root", "tcp4", "tcp6", "ext",
				"raw", "packet", "sysrq", "sysfs"} {
				denied(n)
			}
			for _, n := range []string{"ptrace", "mount", "unshare", "keyctl", "bpf", "io_uring"} {
				if v[n] != "errno 1" {
					t.Errorf("%s: got %v, want errno 1 (EPERM from seccomp)", n, v[n])
				}
			}
			if v["write_scratch"] != float64(1) {
				t.Errorf("scratch not writable: %v", v["write_scratch"])
			}
			if procs, _ := v["procs"].([]any); len(procs) > 3 {
				t.Errorf("sees %d processes: %v", len(procs), procs)
			}
			env, _ := v["env"].(map[string]any)
			want := map[string]bool{"GRANTED": true, "PATH": true, "HOME": true, "TMPDIR": true, "LANG": true,
				"PYTHONDONTWRITEBYTECODE": true, "LC_CTYPE": true}
			for k := range env {
				if !want[k] {
					t.Errorf("unexpected env var %s", k)
				}
			}
			if env["GRANTED"] != "yes" || env["PATH"] == "/evil" {
				t.Errorf("env: %v", env)
			}
			if uid, _ := v["uid"].([]any); len(uid) != 3 || uid[0] == float64(0) || uid[1] == float64(0) {
				t.Errorf("uid: %v", v["uid"])
			}
			caps := strings.Join(toStrings(v["caps"]), "")
			if !strings.Contains(caps, "CapEff:\t0000000000000000") || !strings.Contains(caps, "CapBnd:\t0000000000000000") ||
				!strings.Contains(caps, "NoNewPrivs:\t1") || !strings.Contains(caps, "Seccomp:\t2") {
				t.Errorf("privileges: %q", caps)
			}
			if devs := toStrings(v["devs"]); strings.Join(devs, ",") != "null,random,urandom,zero" {
				t.Errorf("/dev: %v", devs)
			}
			if v["hostname"] != "skillbox" {
				t.Errorf("hostname %v", v["hostname"])
			}
		})
	}
}

func toStrings(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// TestNoStateBetweenCalls: a module global, a scratch file and a
// background process must not survive into the next single-use call.
func TestNoStateBetweenCalls(t *testing.T) {
	body := `        import subprocess, glob
        g = globals()
        seen = {"global": g.get("MARK"), "file": os.path.exists("/scratch/mark"),
                "procs": sorted(int(p) for p in os.listdir("/proc") if p.isdigit())}
        g["MARK"] = 1
        open("/scratch/mark", "w").write("x")
        if os.fork() == 0:
            os.setsid()
            import time
            time.sleep(60)
            os._exit(0)
        return seen`
	for _, mode := range execModes {
		t.Run(mode, func(t *testing.T) {
			sb := openBox(t, Options{Exec: mode}, sandbox.Spec{BundleDir: bundle(t, body)})
			for i := 0; i < 3; i++ {
				start := time.Now()
				res, err := call(t, sb, nil)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("call %d: %v", i, time.Since(start))
				v := value(t, res)
				if v["global"] != nil || v["file"] != false {
					t.Errorf("call %d saw state: %v", i, v)
				}
				if procs := toStrings2(v["procs"]); len(procs) > 3 {
					t.Errorf("call %d saw leftover processes: %v", i, procs)
				}
			}
		})
	}
}

func toStrings2(v any) []any { l, _ := v.([]any); return l }

func TestLimits(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		lim      sandbox.Limits
		resource string // LimitError resource; "" means timeout
	}{
		{"memory", `        x = []
        while True:
            x.append(bytearray(8 << 20))`, sandbox.Limits{Memory: 128 << 20}, "memory"},
		{"pids", `        while True:
            os.fork()`, sandbox.Limits{Pids: 16, Timeout: 10 * time.Second}, "pids"},
		{"spin", `        while True:
            pass`, sandbox.Limits{Timeout: 500 * time.Millisecond}, ""},
		{"output", `        return {"x": "a" * (2 << 20)}`, sandbox.Limits{Output: 1 << 20}, "output"},
	}
	for _, mode := range execModes {
		for _, tt := range tests {
			t.Run(mode+"/"+tt.name, func(t *testing.T) {
				sb := openBox(t, Options{Exec: mode}, sandbox.Spec{BundleDir: bundle(t, tt.body), Limits: tt.lim})
				start := time.Now()
				_, err := call(t, sb, nil)
				t.Logf("%v after %v", err, time.Since(start))
				if tt.resource == "" {
					if errdefs.KindOf(err) != errdefs.Timeout {
						t.Fatalf("got %v (kind %s), want timeout", err, errdefs.KindOf(err))
					}
				} else {
					var le *errdefs.LimitError
					if !errors.As(err, &le) || le.Resource != tt.resource {
						t.Fatalf("got %v, want %s limit", err, tt.resource)
					}
				}
				// The sandbox recovers: a new zygote or jail serves the next call.
				if _, err := sb.Call(context.Background(), sandbox.Request{}); err == nil || errdefs.KindOf(err) == errdefs.Internal {
					if err != nil {
						t.Errorf("next call: %v", err)
					}
				}
			})
		}
	}
}

func TestStdioCap(t *testing.T) {
	body := `        sys.stdout.write("o" * 100000)
        sys.stderr.write("e" * 10)
        return {}`
	sb := openBox(t, Options{}, sandbox.Spec{BundleDir: bundle(t, body), Limits: sandbox.Limits{Stdio: 1000}})
	res, err := call(t, sb, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.StdoutTruncated || res.StderrTruncated || len(res.Stdout) > 1100 || string(res.Stderr) != "eeeeeeeeee" {
		t.Errorf("stdout %d bytes trunc=%v, stderr %q", len(res.Stdout), res.StdoutTruncated, res.Stderr)
	}
}

func TestSkillErrors(t *testing.T) {
	sb := openBox(t, Options{}, sandbox.Spec{BundleDir: bundle(t, `        raise ValueError("nope")`)})
	_, err := call(t, sb, nil)
	var se *errdefs.SkillError
	if !errors.As(err, &se) || se.Type != "ValueError" || se.Message != "nope" {
		t.Fatalf("got %v", err)
	}
	sb = openBox(t, Options{}, sandbox.Spec{BundleDir: bundle(t, `        os._exit(3)`)})
	_, err = call(t, sb, nil)
	if !errors.As(err, &se) || se.Type != "WorkerExited" || !strings.Contains(se.Message, "3") {
		t.Fatalf("got %v", err)
	}
	// A skill that does not import fails Open, as a load error.
	dir := bundle(t, "        pass")
	os.WriteFile(filepath.Join(dir, "skill.py"), []byte("import nonexistent_module_xyz\n"), 0o644)
	_, err = New(Options{}).Open(context.Background(), sandbox.Spec{BundleDir: dir})
	if !errors.As(err, &se) {
		t.Fatalf("open of broken skill: %v", err)
	}
}

func TestSession(t *testing.T) {
	body := `        g = globals()
        g["n"] = g.get("n", 0) + 1
        return {"n": g["n"]}`
	sb := openBox(t, Options{}, sandbox.Spec{BundleDir: bundle(t, body), Mode: sandbox.ModeSession})
	for i := 1; i <= 3; i++ {
		res, err := call(t, sb, nil)
		if err != nil {
			t.Fatal(err)
		}
		if n := value(t, res)["n"]; n != float64(i) {
			t.Errorf("call %d: n=%v", i, n)
		}
	}
}
