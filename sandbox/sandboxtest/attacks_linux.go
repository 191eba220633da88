package sandboxtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// attack is one corpus skill and the containment it must show.
type attack struct {
	name   string // category/name under testdata/attacks
	proves string // one line: what passing proves
	needs  sandbox.Feature
	run    func(t *testing.T, e *attackEnv)
}

// Attacks lists the corpus entries the suite knows, with what each proves.
func Attacks() map[string]string {
	m := map[string]string{}
	for _, a := range attacks {
		m[a.name] = a.proves
	}
	return m
}

// RunAttacks runs every corpus skill against d and asserts containment.
// It skips (with the reason) unless opts.Isolating.
func RunAttacks(t *testing.T, d sandbox.Driver, opts Options) {
	corpus, err := CorpusDir(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("CorpusComplete", func(t *testing.T) {
		known := Attacks()
		dirs, _ := filepath.Glob(filepath.Join(corpus, "*", "*", "manifest.yaml"))
		if len(dirs) < 25 {
			t.Errorf("corpus has %d skills, want at least 25", len(dirs))
		}
		for _, m := range dirs {
			rel, _ := filepath.Rel(corpus, filepath.Dir(m))
			if _, ok := known[filepath.ToSlash(rel)]; !ok {
				t.Errorf("corpus skill %s has no containment assertion in sandboxtest", rel)
			}
		}
	})
	if !opts.Isolating {
		t.Skipf("driver %s isolates nothing: the attack corpus would run unconfined on the host", d.Name())
	}
	e := newAttackEnv(t, d, opts, corpus)
	defer e.close()
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			if class, _, _ := strings.Cut(a.name, "/"); len(opts.AttackClasses) > 0 && !slices.Contains(opts.AttackClasses, class) {
				t.Skipf("attack class %s is not among the ones run against %s (%s)", class, d.Name(), strings.Join(opts.AttackClasses, ", "))
			}
			if why, ok := opts.KnownGaps[a.name]; ok {
				t.Skipf("a known gap of %s: %s", d.Name(), why)
			}
			if a.needs != "" && !opts.Has(a.needs) && !(opts.Emulated && emulatedApplies[a.needs]) {
				t.Skipf("driver %s does not claim %s", d.Name(), a.needs)
			}
			t.Logf("proves: %s", a.proves)
			before := descendants(os.Getpid())
			a.run(t, e)
			e.noLeftovers(t, before)
			if !processAlive(e.sleeper.Process.Pid) {
				t.Fatalf("HOST HARMED: the host canary process %d was killed", e.sleeper.Process.Pid)
			}
		})
	}
}

// emulatedApplies lists the features whose attacks still apply to an
// emulated backend that does not claim them: kernel hardening (seccomp)
// and the pids limit exist to stop system calls and processes, which an
// emulated OS does not have at all, so the attacks run and must be
// contained by the emulation itself.
var emulatedApplies = map[sandbox.Feature]bool{sandbox.FeatureKernelHardened: true, sandbox.FeaturePids: true}

// noLeftovers waits until every process started during the attack is gone
// (sandboxes are closed by then) and no process is jailed under e.root.
func (e *attackEnv) noLeftovers(t *testing.T, before []int) {
	t.Helper()
	// Close this test's sandboxes now (the cleanups would run later).
	deadline := time.Now().Add(5 * time.Second)
	for {
		extra := diff(descendants(os.Getpid()), before)
		under := processesUnder(e.root)
		if len(extra) == 0 && len(under) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, p := range extra {
				t.Errorf("LEAK: process %d (%s) still running after the attack's sandbox closed", p, procDesc(p))
			}
			for _, p := range under {
				t.Errorf("LEAK: process %d (%s) still holds the attack's files after its sandbox closed", p, procDesc(p))
			}
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func processAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && !strings.HasPrefix(strings.TrimSpace(s[i+1:]), "Z")
}

// simple is an attack whose report's probes must all fail (info: excepted)
// and whose read:/list: probes must not match the host.
func simple(t *testing.T, e *attackEnv, name string, extra map[string]any) *report {
	sb, _ := e.openAttack(t, name)
	o := e.call(t, sb, extra)
	r := mustReport(t, o)
	hostCompare(t, r)
	closeNow(t, sb)
	return r
}

func closeNow(t *testing.T, sb sandbox.Sandbox) {
	t.Helper()
	if err := sb.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

var attacks = []attack{
	// --- secrets ---
	{name: "secrets/home-files", proves: "host home files, SSH keys, /etc files and a host canary file are unreadable",
		run: func(t *testing.T, e *attackEnv) {
			r := simple(t, e, "secrets/home-files", nil)
			mustFail(t, r, "read:"+e.canaryFile)
			if p, ok := r.Probes["list:"+e.canaryDir]; ok && p.OK {
				t.Errorf("LEAK: host canary folder listed: %s", p.Data)
			}
		}},
	{name: "secrets/etc-shadow", proves: "/etc/shadow cannot be read directly or through /proc/<pid>/root or path tricks",
		run: func(t *testing.T, e *attackEnv) {
			r := simple(t, e, "secrets/etc-shadow", nil)
			host, _ := os.ReadFile("/etc/shadow")
			for n, p := range r.Probes {
				var got string
				if p.OK && json.Unmarshal(p.Data, &got) == nil && len(host) > 0 && got == string(host) {
					t.Errorf("LEAK: %s returned the host's /etc/shadow", n)
				}
			}
		}},
	{name: "secrets/proc-environ", proves: "no host variable reaches the skill's environment and no host process's environ or cmdline is visible",
		run: func(t *testing.T, e *attackEnv) {
			sb, _ := e.openAttack(t, "secrets/proc-environ")
			r := mustReport(t, e.call(t, sb, nil))
			var env map[string]string
			json.Unmarshal(r.Info["self_env"], &env)
			for k, v := range env {
				if hv, ok := os.LookupEnv(k); ok && hv == v && !fixedEnv[k] {
					t.Errorf("LEAK: host variable %s=%q is in the skill's environment", k, v)
				}
			}
			var cmdlines map[string]string
			json.Unmarshal(r.Info["cmdlines"], &cmdlines)
			exe := filepath.Base(os.Args[0])
			for pid, c := range cmdlines {
				if strings.Contains(c, exe) || strings.Contains(c, "sleep 3600") {
					t.Errorf("LEAK: host process visible from the sandbox as pid %s: %q", pid, c)
				}
			}
			closeNow(t, sb)
		}},
	{name: "secrets/inherited-fds", proves: "descriptors the caller left open without CLOEXEC (a file, a pipe, a socket) are not inherited",
		run: func(t *testing.T, e *attackEnv) {
			fd, err := syscall.Open(e.canaryFile, syscall.O_RDONLY, 0) // deliberately no O_CLOEXEC
			must(t, err)
			defer syscall.Close(fd)
			var p [2]int
			must(t, syscall.Pipe(p[:]))
			defer syscall.Close(p[0])
			defer syscall.Close(p[1])
			syscall.Write(p[1], []byte(e.token))
			s, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
			must(t, err)
			defer syscall.Close(s)
			sb, _ := e.openAttack(t, "secrets/inherited-fds")
			r := mustReport(t, e.call(t, sb, nil))
			var links map[string]string
			json.Unmarshal(r.Info["fd_links"], &links)
			for fd, l := range links {
				if strings.Contains(l, e.root) || strings.Contains(l, "host.sock") {
					t.Errorf("LEAK: inherited descriptor %s -> %s", fd, l)
				}
			}
			closeNow(t, sb)
		}},
	{name: "secrets/bundle-symlink", proves: "symlinks inside the bundle pointing to host files/dirs/root are refused at Open or do not resolve to host content",
		run: func(t *testing.T, e *attackEnv) {
			dir := e.bundle(t, "secrets/bundle-symlink")
			rel, _ := filepath.Rel(dir, e.canaryFile)
			must(t, os.Symlink(e.canaryFile, filepath.Join(dir, "leak-file")))
			must(t, os.Symlink(e.canaryDir, filepath.Join(dir, "leak-dir")))
			must(t, os.Symlink(rel, filepath.Join(dir, "leak-rel")))
			must(t, os.Symlink("/", filepath.Join(dir, "leak-root")))
			spec := SpecFor(dir, e.opts)
			sb, err := e.d.Open(context.Background(), spec)
			if err != nil {
				t.Logf("contained: Open refused the bundle: %v", err)
				return
			}
			defer sb.Close()
			r := mustReport(t, e.call(t, sb, nil))
			mustFail(t, r, "jread:leak-file", "jread:leak-dir", "jread:leak-dir/secret.txt", "jread:leak-rel")
			hostCompare(t, r)
		}},
	{name: "secrets/sibling-skills", proves: "sibling skills' folders next to the bundle, the repo and its testdata are not visible",
		run: func(t *testing.T, e *attackEnv) {
			sb, dir := e.openAttack(t, "secrets/sibling-skills")
			sib := filepath.Join(filepath.Dir(dir), "sibling-"+e.nonce)
			must(t, os.MkdirAll(sib, 0o755))
			must(t, os.WriteFile(filepath.Join(sib, "secret.txt"), []byte(e.token), 0o644))
			r := mustReport(t, e.call(t, sb, map[string]any{"sibling_dir": sib}))
			hostCompare(t, r)
			mustFail(t, r, "read:"+filepath.Join(sib, "secret.txt"))
			closeNow(t, sb)
		}},
	// --- writes ---
	{name: "write/host-paths", proves: "nothing outside the scratch is written: host canary dir, /tmp, /etc, /root, /var/tmp, /dev/shm, the repo stay unchanged",
		run: func(t *testing.T, e *attackEnv) {
			sb, _ := e.openAttack(t, "write/host-paths")
			r := mustReport(t, e.call(t, sb, nil))
			for n := range r.Probes {
				if kind, p, ok := strings.Cut(n, ":"); ok && kind == "create" {
					if _, err := os.Lstat(p); err == nil {
						t.Errorf("NOT CONTAINED: the skill created host file %s", p)
						os.Remove(p)
					}
				}
			}
			st, err := os.Stat(e.canaryFile)
			if err != nil {
				t.Errorf("NOT CONTAINED: host canary file removed or renamed: %v", err)
			} else {
				if st.Mode().Perm() != 0o644 {
					t.Errorf("NOT CONTAINED: host canary file mode changed to %v", st.Mode())
				}
				if b, _ := os.ReadFile(e.canaryFile); string(b) != e.token+"\n" {
					t.Errorf("NOT CONTAINED: host canary file content changed")
				}
			}
			if ents, _ := os.ReadDir(e.writeDir); len(ents) > 0 {
				t.Errorf("NOT CONTAINED: the skill wrote into the host directory %s: %v", e.writeDir, ents)
			}
			closeNow(t, sb)
			os.WriteFile(e.canaryFile, []byte(e.token+"\n"), 0o644)
		}},
	{name: "write/own-bundle", proves: "the bundle is read-only: the skill cannot modify, add or delete its own files",
		run: func(t *testing.T, e *attackEnv) {
			sb, dir := e.openAttack(t, "write/own-bundle")
			before := treeDigest(dir)
			e.call(t, sb, nil)
			closeNow(t, sb)
			if after := treeDigest(dir); after != before {
				t.Errorf("NOT CONTAINED: the bundle changed on the host:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		}},
	// --- network ---
	{name: "net/tcp-loopback", proves: "a host TCP listener on 127.0.0.1, ::1 and host addresses receives no connection",
		run: func(t *testing.T, e *attackEnv) {
			before := e.tcpHits.Load()
			r := simple(t, e, "net/tcp-loopback", nil)
			time.Sleep(200 * time.Millisecond)
			if n := e.tcpHits.Load() - before; n > 0 {
				t.Errorf("NOT CONTAINED: the host TCP listener accepted %d connection(s); probes: %v", n, okProbes(r))
			}
		}},
	{name: "net/egress-bypass", proves: "with a network grant (api.test on one loopback port, by --egress-resolve), the host's other loopback ports are unreachable: directly (host listener, the proxy port's neighbours) and through the proxy (address literals, localhost, the granted name on another port, CONNECT)",
		needs: sandbox.FeatureNetAllowlist,
		run:   func(t *testing.T, e *attackEnv) { egressBypass(t, e) }},
	{name: "net/udp-loopback", proves: "a host UDP listener on 127.0.0.1, ::1 and host addresses receives no datagram",
		run: func(t *testing.T, e *attackEnv) {
			before := e.udpHits.Load()
			simple(t, e, "net/udp-loopback", nil)
			time.Sleep(300 * time.Millisecond)
			if n := e.udpHits.Load() - before; n > 0 {
				t.Errorf("NOT CONTAINED: the host UDP listener received %d datagram(s)", n)
			}
		}},
	{name: "net/dns", proves: "no name resolution and no DNS server (host resolver or public) is reachable",
		needs: sandbox.FeatureNoNetwork,
		run: func(t *testing.T, e *attackEnv) {
			r := simple(t, e, "net/dns", nil)
			if !e.opts.Emulated {
				mustFail(t, r)
				return
			}
			emulatedDNS(t, e, r)
		}},
	{name: "net/unix-abstract", proves: "a host abstract unix socket cannot be reached (separate network namespace)",
		run: func(t *testing.T, e *attackEnv) {
			before := e.abstractHits.Load()
			r := simple(t, e, "net/unix-abstract", nil)
			time.Sleep(100 * time.Millisecond)
			if n := e.abstractHits.Load() - before; n > 0 {
				t.Errorf("NOT CONTAINED: the host abstract socket accepted %d connection(s)", n)
			}
			mustFail(t, r, "stream", "dgram")
		}},
	{name: "net/unix-path", proves: "a host unix socket at a filesystem path (and docker/containerd/dbus sockets) cannot be reached",
		run: func(t *testing.T, e *attackEnv) {
			before := e.unixHits.Load()
			r := simple(t, e, "net/unix-path", nil)
			time.Sleep(100 * time.Millisecond)
			if n := e.unixHits.Load() - before; n > 0 {
				t.Errorf("NOT CONTAINED: the host unix socket accepted %d connection(s)", n)
			}
			mustFail(t, r)
		}},
	{name: "net/raw-socket", proves: "raw IP sockets cannot be created", needs: sandbox.FeatureKernelHardened,
		run: func(t *testing.T, e *attackEnv) { mustFail(t, simple(t, e, "net/raw-socket", nil)) }},
	{name: "net/packet-socket", proves: "AF_PACKET sockets cannot be created", needs: sandbox.FeatureKernelHardened,
		run: func(t *testing.T, e *attackEnv) { mustFail(t, simple(t, e, "net/packet-socket", nil)) }},
	{name: "net/netlink-route", proves: "rtnetlink changes (new address, new route) never reach the host's interfaces or routes",
		run: func(t *testing.T, e *attackEnv) {
			before := hostNet()
			r := simple(t, e, "net/netlink-route", nil)
			after := hostNet()
			if after != before {
				t.Errorf("NOT CONTAINED: host interfaces/routes changed (probes ok: %v)\nbefore:\n%s\nafter:\n%s", okProbes(r), before, after)
				exec.Command("ip", "addr", "del", e.netAddr+"/32", "dev", "lo").Run()
				exec.Command("ip", "route", "del", e.netRoute+"/24", "dev", "lo").Run()
			}
		}},
	// --- kernel interfaces ---
	{name: "kernel/ptrace", proves: "ptrace, process_vm_readv and /proc/<pid>/mem access to any process (child, parent, pid 1) fail",
		run: func(t *testing.T, e *attackEnv) { mustFail(t, simple(t, e, "kernel/ptrace", nil)) }},
	{name: "kernel/mount", proves: "mount, umount, pivot_root, chroot and the new mount API all fail; the host mount table is unchanged",
		run: func(t *testing.T, e *attackEnv) {
			before := mountLines()
			mustFail(t, simple(t, e, "kernel/mount", nil))
			for _, m := range diffS(mountLines(), before) {
				t.Errorf("NOT CONTAINED: new host mount %s", m)
			}
		}},
	{name: "kernel/userns", proves: "no namespace can be created (unshare, clone, clone3) or joined (setns)",
		run: func(t *testing.T, e *attackEnv) { mustFail(t, simple(t, e, "kernel/userns", nil)) }},
	{name: "kernel/keyctl", proves: "the kernel keyring (add_key, request_key, keyctl) is unreachable",
		needs: sandbox.FeatureKernelHardened,
		run:   func(t *testing.T, e *attackEnv) { mustFail(t, simple(t, e, "kernel/keyctl", nil)) }},
	{name: "kernel/bpf", proves: "bpf() cannot create maps or load programs",
		run: func(t *testing.T, e *attackEnv) { mustFail(t, simple(t, e, "kernel/bpf", nil)) }},
	{name: "kernel/io-uring", proves: "io_uring cannot be set up",
		needs: sandbox.FeatureKernelHardened,
		run:   func(t *testing.T, e *attackEnv) { mustFail(t, simple(t, e, "kernel/io-uring", nil), "io_uring_setup") }},
	{name: "kernel/misc-syscalls", proves: "perf_event_open, userfaultfd, open_by_handle_at, module/kexec/reboot/swap/acct, personality, syslog, clock_settime, mknod, x32 and raw devices all fail",
		run: func(t *testing.T, e *attackEnv) { mustFail(t, simple(t, e, "kernel/misc-syscalls", nil)) }},
	{name: "kernel/tiocsti", proves: "no keystroke can be injected into a terminal (TIOCSTI on 0-2, /dev/tty, /dev/console)",
		run: func(t *testing.T, e *attackEnv) { mustFail(t, simple(t, e, "kernel/tiocsti", nil)) }},
	{name: "kernel/proc-sys-write", proves: "/proc/sys is read-only (core_pattern, modprobe, ...) and the host's hostname is unchanged",
		run: func(t *testing.T, e *attackEnv) {
			host, _ := os.Hostname()
			core, _ := os.ReadFile("/proc/sys/kernel/core_pattern")
			mustFail(t, simple(t, e, "kernel/proc-sys-write", nil))
			if now, _ := os.Hostname(); now != host {
				t.Errorf("NOT CONTAINED: the host's hostname changed to %q", now)
				os.WriteFile("/proc/sys/kernel/hostname", []byte(host), 0)
			}
			if now, _ := os.ReadFile("/proc/sys/kernel/core_pattern"); !bytes.Equal(now, core) {
				t.Errorf("NOT CONTAINED: the host's core_pattern changed to %q", now)
			}
		}},
	{name: "kernel/sysrq-trigger", proves: "/proc/sysrq-trigger is not writable and /proc/kcore, /proc/kmsg and kernel addresses are not readable",
		run: func(t *testing.T, e *attackEnv) {
			if !e.opts.Emulated {
				mustFail(t, simple(t, e, "kernel/sysrq-trigger", nil))
				return
			}
			// Emulated: the write lands in the emulation's in-memory file
			// system. What matters is that the host kernel never saw it:
			// a real write of "h" always logs the sysrq help line.
			kl := openKernelLog(t)
			r := simple(t, e, "kernel/sysrq-trigger", nil)
			mustFail(t, r, "read_kcore", "read_kmsg", "kallsyms_addresses")
			if p := r.Probes["sysrq_trigger"]; p.OK {
				if kl == nil {
					t.Fatalf("cannot verify: the write to /proc/sysrq-trigger succeeded in the emulation and the host kernel log is unreadable")
				}
				if l := kl.find("sysrq"); l != "" {
					t.Errorf("NOT CONTAINED: the host kernel logged %q during the attack", l)
				}
				t.Logf("contained: the write reached only the emulated file system (host kernel log shows no sysrq)")
			}
		}},
	{name: "kernel/cgroup-release-agent", proves: "cgroup hierarchies cannot be mounted, release_agent cannot be written, the jail cannot leave its cgroup",
		run: func(t *testing.T, e *attackEnv) {
			agents, _ := filepath.Glob("/sys/fs/cgroup/*/release_agent")
			before := map[string]string{}
			for _, a := range agents {
				b, _ := os.ReadFile(a)
				before[a] = string(b)
			}
			r := simple(t, e, "kernel/cgroup-release-agent", nil)
			targets := 0
			for n := range r.Probes {
				if !strings.HasPrefix(n, "info:") {
					targets++
				}
			}
			if e.opts.Emulated && targets == 0 {
				// Emulated: no cgroup file system exists to write to and
				// no mount(2) to make one; the host check below is what
				// matters.
				if _, ok := r.Info["sys_fs_cgroup"]; !ok {
					t.Errorf("emulated backend: the skill found no probe target but did not report why: %v", r.Info)
				}
			} else {
				mustFail(t, r)
			}
			for a, v := range before {
				if b, _ := os.ReadFile(a); string(b) != v {
					t.Errorf("NOT CONTAINED: host %s changed to %q", a, b)
					os.WriteFile(a, []byte(v), 0)
				}
			}
		}},
	{name: "kernel/privileges", proves: "the skill runs unprivileged: not uid 0, no capabilities, cannot regain root; no_new_privs and seccomp are set",
		run: func(t *testing.T, e *attackEnv) {
			r := simple(t, e, "kernel/privileges", nil)
			if e.opts.Emulated {
				// Emulated: the uids are the emulation's and chown acts on
				// its in-memory scratch (no host scratch exists); the
				// privilege changes themselves must still fail.
				mustFail(t, r, "setuid0", "setgid0", "setresuid0", "setgroups0", "ambient_raise_sys_admin")
			} else {
				mustFail(t, r)
			}
			var ids struct{ UID, EUID int }
			var st map[string]string
			json.Unmarshal(r.Info["ids"], &ids)
			json.Unmarshal(r.Info["status"], &st)
			if ids.UID == 0 || ids.EUID == 0 {
				t.Errorf("NOT CONTAINED: the skill runs as uid %d/euid %d", ids.UID, ids.EUID)
			}
			for _, k := range []string{"CapEff", "CapPrm", "CapAmb", "CapInh"} {
				if v := st[k]; strings.Trim(v, "0") != "" {
					t.Errorf("NOT CONTAINED: %s = %s, want no capabilities", k, v)
				}
			}
			if e.opts.Has(sandbox.FeatureKernelHardened) {
				if st["NoNewPrivs"] != "1" {
					t.Errorf("NoNewPrivs = %q, want 1", st["NoNewPrivs"])
				}
				if st["Seccomp"] != "2" {
					t.Errorf("Seccomp = %q, want 2 (filter)", st["Seccomp"])
				}
			}
		}},
	// Hardening: hardening_linux.go.
	{name: "kernel/ldt-memfd-exec", proves: "modify_ldt, memfd_create, exec of a memfd copy of the interpreter and execveat of a descriptor all fail",
		needs: sandbox.FeatureKernelHardened,
		run:   ldtMemfdExec},
	{name: "kernel/seccomp-listener", proves: "seccomp(2) hands out no user-notification listener (with or without TSYNC), while a plain filter still installs",
		needs: sandbox.FeatureKernelHardened,
		run:   seccompListener},
	{name: "kernel/sysv-ipc", proves: "SysV shared memory, message queues and semaphores and POSIX message queues can be neither created nor enumerated",
		needs: sandbox.FeatureKernelHardened,
		run:   sysvIPC},
	{name: "kernel/proc-host-facts", proves: "/proc holds processes only (no cmdline, config.gz, kallsyms, meminfo, sys, ...) and no mount table (mountinfo, mounts, mountstats of any visible pid) names the bundle's host folder",
		run: procHostFacts},
	{name: "write/scratch-exec", proves: "a program, script or library written to the scratch runs neither directly nor through the dynamic loader, and is neither mapped executable nor dlopen'ed",
		run: scratchExec},
	{name: "kernel/chown-devices", proves: "the device nodes, bundle, runtime and root cannot be chmod'ed, chown'ed, touched, renamed or added to; the host's devices are unchanged; the skill's ids are no host user's or group's",
		run: chownDevices},
	// --- resource exhaustion ---
	{name: "dos/fork-bomb", proves: "a fork bomb ends with a pids limit (or stays under it) and the host can still fork",
		needs: sandbox.FeaturePids,
		run: func(t *testing.T, e *attackEnv) {
			sb, _ := e.openAttack(t, "dos/fork-bomb")
			o := e.call(t, sb, map[string]any{"seconds": 3})
			var le *errdefs.LimitError
			switch {
			case errors.As(o.err, &le):
				if le.Resource != "pids" {
					t.Errorf("fork bomb ended with limit %q, want pids", le.Resource)
				}
			case o.err == nil && o.rep != nil:
				var forks int
				json.Unmarshal(o.rep.Info["forks"], &forks)
				if lim := e.opts.limits().Pids; forks >= lim {
					t.Errorf("NOT CONTAINED: %d forks succeeded, pids limit %d", forks, lim)
				}
			default:
				t.Errorf("fork bomb ended with %v (kind %s), want a pids limit or a contained result", o.err, errdefs.KindOf(o.err))
			}
			hostResponsive(t)
			closeNow(t, sb)
		}},
	{name: "dos/memory-bomb", proves: "allocating past the memory limit ends the call with a memory limit error",
		needs: sandbox.FeatureMemory,
		run: func(t *testing.T, e *attackEnv) {
			// The memory limit is under test, not the timeout: the call
			// gets a generous one, so that a slow or loaded machine (each
			// page fault costs ~14 µs under PVM) reaches the limit first
			// (it timed out at 5 s beside a CI run).
			slow := e.opts
			slow.Limits.Timeout = max(e.opts.limits().Timeout, memoryBombTimeout)
			sb, _ := e.openAttack(t, "dos/memory-bomb", func(s *sandbox.Spec) { s.Limits.Timeout = slow.Limits.Timeout })
			res, err, el := Call(t, sb, slow, e.params(nil), nil)
			o := outcome{res: res, err: err, elapsed: el}
			e.noSecret(t, o, e.token)
			if o.err == nil {
				t.Fatalf("NOT CONTAINED: the memory bomb returned: %.200s", resValue(o.res))
			}
			AssertLimit(t, o.err, "memory")
			hostResponsive(t)
			closeNow(t, sb)
		}},
	{name: "dos/cpu-spin", proves: "a CPU spin with threads and a detached SIGTERM-ignoring child ends at the timeout and leaves nothing running",
		needs: sandbox.FeatureTimeout,
		run: func(t *testing.T, e *attackEnv) {
			sb, _ := e.openAttack(t, "dos/cpu-spin", func(s *sandbox.Spec) { s.Limits.Timeout = 2 * time.Second })
			o := e.call(t, sb, nil)
			if e.opts.Emulated && noProcesses(o.err) {
				// Emulated: the attack's first step, fork, does not exist
				// (ENOSYS), so no child can outlive anything. The spin
				// itself still applies: run it without the fork.
				t.Logf("contained: fork refused by the emulation (%v); spinning without it", o.err)
				closeNow(t, sb)
				sb = e.openInline(t, "cpu-spin-nofork", spinSkill, func(s *sandbox.Spec) { s.Limits.Timeout = 2 * time.Second })
				o = e.call(t, sb, nil)
			}
			AssertKind(t, o.err, errdefs.Timeout)
			if o.elapsed > 2*time.Second+e.opts.grace() {
				t.Errorf("timeout 2s reported after %v", o.elapsed)
			}
			closeNow(t, sb)
		}},
	{name: "dos/output-flood", proves: "megabytes on stdout/stderr are capped and marked truncated (or end with an output limit); the host stays fine",
		needs: sandbox.FeatureOutputCap,
		run: func(t *testing.T, e *attackEnv) {
			sb, _ := e.openAttack(t, "dos/output-flood")
			o := e.call(t, sb, nil)
			var le *errdefs.LimitError
			switch {
			case o.err == nil:
				checkTruncated(t, o.res, e.opts.limits().Stdio)
			case errors.As(o.err, &le) && slices.Contains([]string{"stdout", "stderr", "output"}, le.Resource):
			default:
				t.Errorf("output flood ended with %v (kind %s), want a truncated result or an output limit", o.err, errdefs.KindOf(o.err))
			}
			closeNow(t, sb)
		}},
	{name: "dos/huge-result", proves: "a result over the output limit ends with an output limit error",
		needs: sandbox.FeatureOutputCap,
		run: func(t *testing.T, e *attackEnv) {
			sb, _ := e.openAttack(t, "dos/huge-result")
			o := e.call(t, sb, map[string]any{"bytes": 4 * e.opts.limits().Output})
			AssertLimit(t, o.err, "output")
			closeNow(t, sb)
		}},
	// --- state ---
	{name: "state/persist-between-calls", proves: "nothing a call plants (globals, env, monkeypatches, files, a delayed background writer) is seen by the next call",
		run: func(t *testing.T, e *attackEnv) {
			sb, _ := e.openAttack(t, "state/persist-between-calls")
			o := e.call(t, sb, map[string]any{"phase": 1, "delay": 1.0})
			if e.opts.Emulated && noProcesses(o.err) {
				// Emulated: phase 1 plants globals, environment, a
				// monkeypatch and files, then fails at fork (ENOSYS), so
				// there is no background writer; phase 2 must still see
				// none of what was planted.
				t.Logf("phase 1 planted its state, then fork was refused by the emulation: %v", o.err)
			} else {
				mustReport(t, o)
			}
			time.Sleep(1500 * time.Millisecond)
			r := mustReport(t, e.call(t, sb, map[string]any{"phase": 2}))
			var seen map[string]any
			json.Unmarshal(r.Info["seen"], &seen)
			if len(seen) > 0 {
				t.Errorf("NOT CONTAINED: call 2 saw state of call 1: %v", seen)
			}
			closeNow(t, sb)
			home, _ := os.UserHomeDir()
			for _, d := range []string{os.TempDir(), "/tmp", home} {
				for _, p := range []string{"planted-", "late-"} {
					f := filepath.Join(d, p+e.nonce)
					if _, err := os.Lstat(f); err == nil {
						t.Errorf("NOT CONTAINED: the skill wrote host file %s", f)
						os.Remove(f)
					}
				}
			}
		}},
	// Cross-call attacks (crosscall_linux.go): call 1 plants with a secret,
	// call 2 of the same opened sandbox (other params) must see none of it.
	// Emulated (pyodide): every call runs in a fresh worker; fork, threads,
	// SysV IPC and dir_fd may not exist there, which the skills report as
	// refused probes and which counts as contained.
	{name: "state/import-mmap", proves: "a MAP_SHARED anonymous mapping made at the skill's import does not carry call 1's secret to call 2, and the two calls do not share one import",
		run: func(t *testing.T, e *attackEnv) { crossCallAttack(t, e, "state/import-mmap") }},
	{name: "state/harness-override", proves: "a skill that replaces the harness's cleanup (and os.kill/unlink/rmdir) at import cannot keep a background process or scratch files for call 2; calls do not share one import",
		run: func(t *testing.T, e *attackEnv) { crossCallAttack(t, e, "state/harness-override") }},
	{name: "state/sysv-ipc", proves: "SysV shared memory, message queues, semaphores (by key, IPC_PRIVATE, enumerated) and POSIX message queues of call 1 are refused or gone for call 2",
		run: func(t *testing.T, e *attackEnv) { crossCallAttack(t, e, "state/sysv-ipc") }},
	{name: "state/deep-scratch", proves: "scratch trees deeper than PATH_MAX, 5000 levels deep (past Python's recursion limit), mode 0, read-only or with non-UTF-8/newline names are gone for call 2, and the skill's next call still works",
		run: func(t *testing.T, e *attackEnv) { crossCallAttack(t, e, "state/deep-scratch") }},
	{name: "state/leftovers", proves: "a double-forked setsid process, a child forked from a thread, signal dispositions and mask, environment changes and descriptors (leaked, or opened at import without CLOEXEC) do not reach call 2",
		run: func(t *testing.T, e *attackEnv) { crossCallAttack(t, e, "state/leftovers") }},
	{name: "state/parent-attrs", proves: "resource limits, nice value, scheduling policy and I/O priority that call 1 sets in its parent (a zygote: same uid) do not reach call 2, which would inherit them",
		run: func(t *testing.T, e *attackEnv) { crossCallAttack(t, e, "state/parent-attrs") }},
	// --- protocol abuse ---
	{name: "protocol/forge-frames", proves: "forged frames on every descriptor end as a skill error or the call's own result, never another call's",
		run: func(t *testing.T, e *attackEnv) {
			sb, _ := e.openAttack(t, "protocol/forge-frames")
			victim := e.openVictim(t, "echo")
			defer closeNow(t, victim)
			stop := make(chan struct{})
			victimDone := make(chan struct{})
			go func() {
				defer close(victimDone)
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					res, err, _ := Call(t, victim, e.opts, map[string]any{"i": float64(i)}, nil)
					var got struct {
						Params map[string]any `json:"params"`
					}
					if err != nil || json.Unmarshal(res.Value, &got) != nil || got.Params["i"] != float64(i) {
						t.Errorf("NOT CONTAINED: a concurrent call of another skill got %v / %s", err, resValue(res))
						return
					}
				}
			}()
			for _, mode := range []string{"forge", "forge_desc"} {
				o := e.call(t, sb, map[string]any{"mode": mode, "value": "real-" + mode})
				checkOwnOutcome(t, o, "real-"+mode, e.opts)
				next := e.call(t, sb, map[string]any{"mode": "echo", "value": "next-" + mode})
				if next.err != nil || next.rep == nil || string(next.rep.Echo) != `"next-`+mode+`"` {
					t.Errorf("NOT CONTAINED: the call after a forging call got %v / %.300s", next.err, resValue(next.res))
				}
			}
			close(stop)
			<-victimDone
			closeNow(t, sb)
		}},
	{name: "protocol/junk-frames", proves: "junk, zero and huge frame lengths and truncated frames end the call as a skill error (or timeout), never a hang or a host crash, and the sandbox keeps working",
		run: func(t *testing.T, e *attackEnv) {
			sb, _ := e.openAttack(t, "protocol/junk-frames", func(s *sandbox.Spec) { s.Limits.Timeout = 3 * time.Second })
			for _, mode := range []string{"junk", "huge_len", "zero_len", "partial"} {
				o := e.call(t, sb, map[string]any{"mode": mode, "value": "real-" + mode, "stall": 30})
				t.Logf("%s: ended after %v: %v", mode, o.elapsed, o.err)
				// A hang guard, not a speed test: the skill stalls for 30 s,
				// so a call that ends well before that was ended by its 3 s
				// timeout. Elapsed also counts waiting for a sandbox (a new
				// pyodide worker takes seconds on a loaded machine).
				if bound := 3*time.Second + max(e.opts.grace(), 12*time.Second); o.elapsed > bound {
					t.Errorf("%s: call took %v (timeout 3s, stall 30s, bound %v)", mode, o.elapsed, bound)
				}
				// A length over the frame cap cannot be told from a real
				// oversized result, so an output limit is a correct ending too.
				var le *errdefs.LimitError
				switch {
				case errors.As(o.err, &le) && le.Resource == "output" && (mode == "junk" || mode == "huge_len"):
				case mode == "junk":
					checkOwnOutcome(t, o, "real-junk", e.opts)
				default:
					if k := errdefs.KindOf(o.err); k != errdefs.Skill && k != errdefs.Timeout {
						t.Errorf("%s: got %v (kind %s), want a skill error or a timeout", mode, o.err, k)
					}
				}
				next := e.call(t, sb, map[string]any{"mode": "echo", "value": "next-" + mode})
				if next.err != nil || next.rep == nil || string(next.rep.Echo) != `"next-`+mode+`"` {
					t.Errorf("%s: the next call got, after %v, %v / %.300s", mode, next.elapsed, next.err, resValue(next.res))
				}
			}
			closeNow(t, sb)
		}},
	// --- other processes ---
	{name: "procs/kill-all", proves: "kill(-1) and SIGKILL to every pid reach neither the host (test process, canary process) nor a concurrent sandbox",
		run: func(t *testing.T, e *attackEnv) {
			sb, _ := e.openAttack(t, "procs/kill-all")
			victim := e.openVictim(t, "sleeper")
			defer closeNow(t, victim)
			var vres *sandbox.Result
			var verr error
			runConcurrently(
				func() { vres, verr, _ = Call(t, victim, e.opts, map[string]any{"seconds": 2}, nil) },
				func() {
					time.Sleep(500 * time.Millisecond)
					o := e.call(t, sb, nil)
					if o.rep != nil {
						mustFail(t, o.rep, "kill_host_pid:"+itoa(e.sleeper.Process.Pid), "kill_host_pid:"+itoa(os.Getpid()))
					}
				})
			if verr != nil {
				t.Errorf("NOT CONTAINED: a concurrent sandbox's call died: %v", verr)
			} else if !strings.Contains(string(vres.Value), "slept") {
				t.Errorf("concurrent call result %s", vres.Value)
			}
			closeNow(t, sb)
		}},
	{name: "procs/spy-sibling-sandbox", proves: "a concurrent call of another skill cannot find its scratch files, environment or process name",
		run: func(t *testing.T, e *attackEnv) {
			secret := "VICTIM" + strings.ToUpper(randHex(4))
			spy, _ := e.openAttack(t, "procs/spy-sibling-sandbox")
			// The victim holds its call open for 3 s while the spy looks;
			// its timeout only guards against a hang (a loaded machine
			// slows the spy's and the victim's starts around the hold).
			victim, _ := e.openAttack(t, "procs/spy-victim", func(s *sandbox.Spec) { s.Limits.Timeout = 30 * time.Second })
			var vo outcome
			runConcurrently(
				func() { vo = e.call(t, victim, map[string]any{"secret": secret, "hold": 3}) },
				func() {
					time.Sleep(700 * time.Millisecond)
					o := e.call(t, spy, map[string]any{"seconds": 2})
					e.noSecret(t, o, secret)
					if o.rep != nil {
						var found map[string]string
						json.Unmarshal(o.rep.Info["found"], &found)
						for p, v := range found {
							if strings.Contains(v, secret) {
								t.Errorf("LEAK: the spy read the victim's secret at %s", p)
							}
						}
					}
				})
			if vo.err != nil || vo.rep == nil {
				t.Errorf("victim call failed: %v", vo.err)
			}
			closeNow(t, spy)
			closeNow(t, victim)
		}},
	{name: "procs/spy-victim", proves: "(victim for procs/spy-sibling-sandbox; asserted there)",
		run: func(t *testing.T, e *attackEnv) { t.Skip("victim skill: exercised by procs/spy-sibling-sandbox") }},
}

// openVictim opens a functional skill as a bystander sandbox; the caller
// closes it before the attack's leftover check.
func (e *attackEnv) openVictim(t *testing.T, skill string) sandbox.Sandbox {
	t.Helper()
	sb, err := e.d.Open(context.Background(), SpecFor(FunctionalSkill(t, skill), e.opts))
	if err != nil {
		t.Fatalf("open victim %s: %v", skill, err)
	}
	return sb
}

// checkOwnOutcome accepts a skill error, the call's real result, or a
// forged result carried in the call's own reply: a skill controls its own
// result anyway (docs/PROTOCOL.md: forging only forges its own result).
func checkOwnOutcome(t *testing.T, o outcome, real string, opts Options) {
	t.Helper()
	if o.err != nil {
		if errdefs.KindOf(o.err) != errdefs.Skill {
			t.Errorf("got %v (kind %s), want a skill error or the real result", o.err, errdefs.KindOf(o.err))
		}
		return
	}
	if o.rep != nil && string(o.rep.Real) == `"`+real+`"` {
		return
	}
	var forged struct {
		Forged bool `json:"forged"`
	}
	if json.Unmarshal(o.res.Value, &forged) == nil && forged.Forged {
		t.Logf("the host accepted a forged frame as this call's own result: %s", o.res.Value)
		return
	}
	t.Errorf("unexpected result %.300s", o.res.Value)
}

func okProbes(r *report) []string {
	var out []string
	for n, p := range r.Probes {
		if p.OK {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// treeDigest describes every entry under dir: path, mode, size, content.
func treeDigest(dir string) string {
	var b strings.Builder
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		b.WriteString(rel + " " + fi.Mode().String() + " " + itoa(int(fi.Size())) + " " + fi.ModTime().String())
		if fi.Mode().IsRegular() {
			c, _ := os.ReadFile(p)
			b.WriteString(" " + itoa(len(c)) + ":" + string(bytes.ToValidUTF8(c[:min(len(c), 64)], nil)))
		}
		b.WriteString("\n")
		return nil
	})
	return b.String()
}

// hostNet describes the host's interfaces, addresses and routes.
func hostNet() string {
	var b strings.Builder
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		b.WriteString(i.Name + " " + i.Flags.String())
		as, _ := i.Addrs()
		for _, a := range as {
			b.WriteString(" " + a.String())
		}
		b.WriteString("\n")
	}
	for _, f := range []string{"/proc/net/route", "/proc/net/ipv6_route"} {
		c, _ := os.ReadFile(f)
		b.Write(c)
	}
	return b.String()
}

// hostResponsive fails if the host cannot start a process within 5s.
func hostResponsive(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := exec.CommandContext(ctx, "true").Run(); err != nil {
		t.Errorf("HOST HARMED: cannot start a process on the host: %v", err)
	}
}

// proxyPort is where the linux backend's jails find the egress proxy; the
// probes also aim at its neighbours (harmless for other backends).
const proxyPort = 3128

// egressBypass runs the netprobe skill with a grant for one loopback port
// (a listener of this test) and asserts that the granted port is reachable
// through the proxy (so the probes are meaningful) and nothing else is.
func egressBypass(t *testing.T, e *attackEnv) {
	granted, err := net.Listen("tcp4", "127.0.0.1:0")
	must(t, err)
	defer granted.Close()
	go func() {
		for {
			c, err := granted.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				buf := make([]byte, 4096)
				c.Read(buf)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\ngranted")
			}()
		}
	}()
	gp := granted.Addr().(*net.TCPAddr).Port
	spec := SpecFor(FunctionalSkill(t, "netprobe"), e.opts)
	spec.SkillID = "net/egress-bypass"
	spec.Network = []sandbox.HostPort{{Host: "api.test", Port: gp}}
	spec.Resolve = map[string][]netip.Addr{"api.test": {netip.MustParseAddr("127.0.0.1")}}
	sb, err := e.d.Open(context.Background(), spec)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { sb.Close() })
	hp := e.tcpPort
	var urls, connects []string
	for _, h := range []string{"127.0.0.1", "[::1]", "localhost", "api.test", "127.1", "2130706433", "[::ffff:127.0.0.1]"} {
		urls = append(urls, fmt.Sprintf("http://%s:%d/", h, hp), fmt.Sprintf("https://%s:%d/", h, hp))
		connects = append(connects, fmt.Sprintf("%s:%d", h, hp))
	}
	var direct [][]any
	for _, h := range []string{"127.0.0.1", "::1"} {
		for _, p := range []int{hp, gp, proxyPort - 1, proxyPort + 1} {
			direct = append(direct, []any{h, p})
		}
	}
	control := fmt.Sprintf("http://api.test:%d/", gp)
	before := e.tcpHits.Load()
	o := e.call(t, sb, map[string]any{"urls": append(urls, control), "connect": connects, "direct": direct})
	r := mustReport(t, o)
	closeNow(t, sb)
	if p := r.Probes["get:"+control]; !p.OK || !strings.Contains(string(p.Data), "granted") {
		t.Fatalf("the granted destination is not reachable through the proxy (%s), so the probes prove nothing", p.Err)
	}
	delete(r.Probes, "get:"+control)
	mustFail(t, r)
	time.Sleep(200 * time.Millisecond)
	if n := e.tcpHits.Load() - before; n > 0 {
		t.Errorf("NOT CONTAINED: the host TCP listener accepted %d connection(s); probes: %v", n, okProbes(r))
	}
}

// memoryBombTimeout is the memory bomb's call timeout: it bounds a hang,
// the memory limit should end the call long before.
const memoryBombTimeout = 60 * time.Second
