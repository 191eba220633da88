//go:build linux

package linux

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/jail"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// hardenBody probes, from inside a real jail, what the jail's root, /proc,
// uid and devices allow; each probe's value or exception lands in the
// result under its name.
const hardenBody = `        out = {}
        def t(name, fn):
            try:
                out[name] = fn()
            except BaseException as e:
                out[name] = "ERR " + type(e).__name__ + ": " + str(e)
        import subprocess, shutil, stat
        def dropped():
            shutil.copy(sys.executable, "/scratch/py")
            os.chmod("/scratch/py", 0o755)
            return subprocess.run(["/scratch/py", "-c", "print(1)"], capture_output=True).returncode
        t("exec_scratch", dropped)
        def script():
            with open("/scratch/s.sh", "w") as f:
                f.write("#!/scratch/py\n")
            os.chmod("/scratch/s.sh", 0o755)
            return subprocess.run(["/scratch/s.sh"], capture_output=True).returncode
        t("exec_script", script)
        t("mmap_exec_scratch", lambda: __import__("mmap").mmap(os.open("/scratch/py", os.O_RDONLY), 4096,
            prot=__import__("mmap").PROT_READ | __import__("mmap").PROT_EXEC) and "mapped")
        t("mountinfo", lambda: open("/proc/self/mountinfo").read())
        t("mounts", lambda: open("/proc/self/mounts").read())
        t("mountinfo_1", lambda: open("/proc/1/mountinfo").read())
        t("proc_root", lambda: sorted(n for n in os.listdir("/proc") if not n.isdigit()))
        for f in ("cmdline", "config.gz", "kallsyms", "meminfo", "version", "cpuinfo", "modules", "mounts", "sys/kernel/hostname"):
            t("proc:" + f, lambda f=f: open("/proc/" + f, "rb").read(64).decode("latin-1"))
        t("self_status", lambda: "Uid:" in open("/proc/self/status").read())
        t("ids", lambda: [os.getuid(), os.geteuid(), os.getgid(), os.getegid()])
        for d in ("null", "zero", "random", "urandom"):
            p = "/dev/" + d
            t("chmod:" + d, lambda p=p: os.chmod(p, 0o777) or "changed")
            t("chown:" + d, lambda p=p: os.chown(p, os.getuid(), os.getgid()) or "changed")
            t("utime:" + d, lambda p=p: os.utime(p, (0, 0)) or "changed")
            t("mode:" + d, lambda p=p: oct(os.stat(p).st_mode))
        t("write_null", lambda: open("/dev/null", "w").write("x"))
        t("subprocess", lambda: subprocess.run([sys.executable, "-c", "print(2)"], capture_output=True, text=True).stdout)
        def mp():
            import multiprocessing as m
            ctx = m.get_context("fork")
            a, b = ctx.Pipe()
            p = ctx.Process(target=lambda: b.send("from child"))
            p.start()
            got = a.recv()
            p.join()
            return [got, p.exitcode]
        t("multiprocessing", mp)
        t("mp_lock", lambda: repr(__import__("multiprocessing").get_context("fork").Lock()))
        t("mp_queue", lambda: repr(__import__("multiprocessing").get_context("fork").Queue()))
        def cb():
            import ctypes
            libc = ctypes.CDLL(None)
            arr = (ctypes.c_int * 3)(3, 1, 2)
            cmp = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int))(
                lambda a, b: a[0] - b[0])
            libc.qsort(arr, 3, ctypes.sizeof(ctypes.c_int), cmp)
            return list(arr)
        t("ctypes_callback", cb)
        return out`

// TestJailHardening checks in a real jail: nothing written to /scratch
// executes; /proc shows processes only (no host facts) and its mount
// tables no host path of the bundle; the skill's uid is a jail id; the
// device nodes cannot be changed; and what skills need (subprocess,
// multiprocessing with fork, ctypes callbacks, writing /dev/null) works.
func TestJailHardening(t *testing.T) {
	for _, mode := range execModes {
		t.Run(mode, func(t *testing.T) {
			dir := bundle(t, hardenBody)
			sb := openBox(t, Options{Exec: mode}, sandbox.Spec{BundleDir: dir})
			res, err := call(t, sb, nil)
			if err != nil {
				t.Fatal(err)
			}
			v := value(t, res)
			t.Logf("mountinfo in the jail:\n%s", v["mountinfo"])
			t.Run("ScratchNoexec", func(t *testing.T) { checkNoexec(t, v) })
			t.Run("ProcSubset", func(t *testing.T) { checkProcSubset(t, v) })
			t.Run("MountinfoNoHostPaths", func(t *testing.T) { checkMountinfo(t, v, dir) })
			t.Run("JailID", func(t *testing.T) { checkIDs(t, v) })
			t.Run("Devices", func(t *testing.T) { checkDevices(t, v) })
			t.Run("StillWorks", func(t *testing.T) { checkStillWorks(t, v) })
		})
	}
}

// Two sandboxes open at once run as two ids: what the kernel counts per
// user (inotify instances, pipe buffer pages, pending signals) is then
// counted per sandbox, so one skill holding all of its user's inotify
// instances (128 here) no longer denies them to another skill's calls.
func TestSandboxesRunAsIDsOfTheirOwn(t *testing.T) {
	requireRoot(t)
	const body = `        return {"ids": [os.getuid(), os.geteuid(), os.getgid(), os.getegid()]}`
	seen := map[float64]bool{}
	for i := range 2 {
		sb := openBox(t, Options{}, sandbox.Spec{SkillID: fmt.Sprintf("test/ids%d", i), BundleDir: bundle(t, body)})
		res, err := call(t, sb, nil)
		if err != nil {
			t.Fatal(err)
		}
		v := value(t, res)
		checkIDs(t, v)
		id := v["ids"].([]any)[0].(float64)
		if seen[id] {
			t.Errorf("sandbox %d runs as %v, as an earlier one does", i, id)
		}
		seen[id] = true
	}
}

func str(v any) string { s, _ := v.(string); return s }

func checkNoexec(t *testing.T, v map[string]any) {
	for _, n := range []string{"exec_scratch", "exec_script"} {
		if !strings.HasPrefix(str(v[n]), "ERR PermissionError") {
			t.Errorf("%s: a file written to /scratch was executed (or failed otherwise): %v", n, v[n])
		}
	}
	if !strings.HasPrefix(str(v["mmap_exec_scratch"]), "ERR PermissionError") {
		t.Errorf("a /scratch file was mapped executable: %v", v["mmap_exec_scratch"])
	}
}

func checkProcSubset(t *testing.T, v map[string]any) {
	for k, x := range v {
		if f, ok := strings.CutPrefix(k, "proc:"); ok && !strings.HasPrefix(str(x), "ERR FileNotFoundError") {
			t.Errorf("/proc/%s is there: %.80q", f, x)
		}
	}
	if got := strings.Join(toStrings(v["proc_root"]), ","); got != "self,thread-self" {
		t.Errorf("/proc holds %s besides pids, want only self,thread-self", got)
	}
	if v["self_status"] != true {
		t.Errorf("/proc/self/status: %v", v["self_status"])
	}
}

// checkMountinfo: the mount tables of the jail show neither the bundle's
// host folder nor any of its parents below "/"; binds of the runtime may
// show their source only where it equals their path in the jail.
func checkMountinfo(t *testing.T, v map[string]any, bundleDir string) {
	for _, n := range []string{"mountinfo", "mounts", "mountinfo_1"} {
		text := str(v[n])
		if n == "mountinfo_1" && strings.HasPrefix(text, "ERR FileNotFoundError") {
			continue // a zygote at pid 1 is not dumpable: hidepid=invisible hides it
		}
		if text == "" || strings.HasPrefix(text, "ERR") {
			t.Fatalf("%s unreadable: %v", n, v[n])
		}
		if !strings.Contains(text, " "+jail.SkillDir+" ") {
			t.Errorf("%s has no /skill mount:\n%s", n, text)
		}
		if strings.Contains(text, bundleDir) || strings.Contains(text, filepath.Dir(bundleDir)) {
			t.Errorf("%s shows the bundle's host path %s:\n%s", n, bundleDir, text)
		}
		if n == "mounts" {
			continue
		}
		for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
			f := strings.Fields(l)
			if len(f) < 5 {
				t.Fatalf("odd mountinfo line %q", l)
			}
			root, at := f[3], f[4]
			if at == jail.SkillDir && root != "/" {
				t.Errorf("%s: /skill is not the root of its own file system: %s", n, l)
			}
			if root != "/" && root != at && !strings.HasSuffix(at, root) {
				t.Errorf("%s: mount at %s shows a host source %s", n, at, root)
			}
		}
	}
}

func checkIDs(t *testing.T, v map[string]any) {
	ids, _ := v["ids"].([]any)
	id, _ := ids[0].(float64)
	want := fmt.Sprint([]any{id, id, id, id})
	if got := fmt.Sprint(ids); got != want || !jail.IsID(int(id)) {
		t.Errorf("ids %s, want one of the jails' ids everywhere", got)
	}
}

func checkDevices(t *testing.T, v map[string]any) {
	for _, d := range []string{"null", "zero", "random", "urandom"} {
		for _, op := range []string{"chmod", "chown", "utime"} {
			if got := str(v[op+":"+d]); !strings.HasPrefix(got, "ERR") {
				t.Errorf("%s /dev/%s succeeded in the jail", op, d)
			}
		}
		st, err := os.Stat("/dev/" + d)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("0o%o", uint32(st.Mode().Perm())|0o20000); str(v["mode:"+d]) != want {
			t.Errorf("/dev/%s mode in the jail %v, host %s", d, v["mode:"+d], want)
		}
	}
}

func checkStillWorks(t *testing.T, v map[string]any) {
	if v["write_null"] != float64(1) {
		t.Errorf("writing /dev/null: %v", v["write_null"])
	}
	if v["subprocess"] != "2\n" {
		t.Errorf("subprocess: %v", v["subprocess"])
	}
	if fmt.Sprint(v["multiprocessing"]) != "[from child 0]" {
		t.Errorf("multiprocessing (fork, Pipe): %v", v["multiprocessing"])
	}
	if fmt.Sprint(v["ctypes_callback"]) != "[1 2 3]" {
		t.Errorf("ctypes callback: %v", v["ctypes_callback"])
	}
	// Not asserted: they need POSIX semaphores in /dev/shm, which no jail had.
	t.Logf("multiprocessing Lock: %v; Queue: %v", v["mp_lock"], v["mp_queue"])
}

// TestKernelFallbacks: on a kernel without /proc's process subset or
// without overlayfs (faked), Open refuses with kind unavailable naming
// what is missing; with best effort the jail runs without it, and says so
// on every call.
func TestKernelFallbacks(t *testing.T) {
	requireRoot(t)
	body := `        out = {"mountinfo": open("/proc/self/mountinfo").read()}
        try:
            out["cmdline"] = open("/proc/cmdline").read()
        except OSError as e:
            out["cmdline"] = "ERR " + str(e)
        return out`
	// weakened tells from a call's result that the jail ran without it.
	for _, tt := range []struct {
		fake     string
		weakened func(v map[string]any, bundleDir string) bool
	}{
		{jail.FallbackProcSubset, func(v map[string]any, _ string) bool { return !strings.HasPrefix(str(v["cmdline"]), "ERR") }},
		{jail.FallbackOverlay, func(v map[string]any, dir string) bool { return strings.Contains(str(v["mountinfo"]), dir) }},
	} {
		t.Run(tt.fake, func(t *testing.T) {
			dir := bundle(t, body)
			d := newTestDriver(Options{Exec: ExecCold}, testSeams{missing: map[string]string{tt.fake: "fake: old kernel"}})
			_, err := d.Open(context.Background(), sandbox.Spec{BundleDir: dir})
			if errdefs.KindOf(err) != errdefs.Unavailable || !strings.Contains(err.Error(), tt.fake) {
				t.Fatalf("Open: %v (kind %s), want unavailable naming %s", err, errdefs.KindOf(err), tt.fake)
			}
			sb, err := d.Open(context.Background(), sandbox.Spec{BundleDir: dir, BestEffort: true})
			if err != nil {
				t.Fatal(err)
			}
			defer sb.Close()
			res, err := call(t, sb, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(strings.Join(res.Warnings, "\n"), "without "+tt.fake) {
				t.Errorf("warnings %q name no %s", res.Warnings, tt.fake)
			}
			v := value(t, res)
			if !tt.weakened(v, dir) {
				t.Errorf("best effort without %s ran with it anyway: %v", tt.fake, v)
			}
		})
	}
}
