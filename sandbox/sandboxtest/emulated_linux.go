package sandboxtest

// Assertions for emulated backends (Options.Emulated): the skill's Python
// runs on an emulated operating system, so some probes "succeed" against
// the emulation. These helpers check the host instead.

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// emscriptenFakeDNS is the range Emscripten's getaddrinfo hands out: it
// makes up an address per name (172.29.<n>.0) without any resolver, so
// that a socket can later be "connected" to the name through a WebSocket
// bridge that the backend does not provide.
var emscriptenFakeDNS = netip.MustParsePrefix("172.29.0.0/16")

// emulatedDNS checks net/dns on an emulated backend: no DNS server is
// reachable (every udp53/tcp53 probe fails), every "resolved" address is
// one Emscripten made up (the random canary name, which exists in no DNS,
// gets one too: nothing was asked of a resolver), and connecting to those
// addresses fails without reaching the host listener.
func emulatedDNS(t *testing.T, e *attackEnv, r *report) {
	t.Helper()
	var servers, fakes []string
	for n, p := range r.Probes {
		switch {
		case strings.HasPrefix(n, "udp53:"), strings.HasPrefix(n, "tcp53:"):
			servers = append(servers, n)
		case strings.HasPrefix(n, "resolve:") && p.OK:
			var addrs []string
			json.Unmarshal(p.Data, &addrs)
			for _, a := range addrs {
				ip, err := netip.ParseAddr(a)
				if err != nil || !emscriptenFakeDNS.Contains(ip) {
					t.Errorf("NOT CONTAINED: %s returned %q, not an address of the emulation's made-up range %s", n, a, emscriptenFakeDNS)
					continue
				}
				fakes = append(fakes, a)
			}
		}
	}
	if len(servers) == 0 {
		t.Fatal("report has no DNS server probes")
	}
	mustFail(t, r, servers...)
	canary := "resolve:skillbox-canary-" + e.nonce + ".example.org"
	if p, ok := r.Probes[canary]; ok && p.OK {
		t.Logf("the non-existent canary name got %s: the answers are made up, no resolver was asked", p.Data)
	}
	if len(fakes) == 0 {
		return
	}
	before := e.tcpHits.Load()
	var targets []string
	for _, a := range fakes {
		for _, port := range []int{e.tcpPort, 80, 443, 53} {
			targets = append(targets, a+":"+itoa(port))
		}
	}
	targets = append(targets, "example.com:"+itoa(e.tcpPort), "example.com:443")
	sb := e.openInline(t, "dns-connect", connectSkill)
	o := e.call(t, sb, map[string]any{"targets": targets})
	rep := mustReport(t, o)
	mustFail(t, rep)
	closeNow(t, sb)
	time.Sleep(200 * time.Millisecond)
	if n := e.tcpHits.Load() - before; n > 0 {
		t.Errorf("NOT CONTAINED: connecting to the made-up addresses reached the host listener %d time(s)", n)
	}
}

// connectSkill tries a TCP connection to each "host:port" of
// params["targets"] and reports each as a probe.
const connectSkill = `import socket

from skillware.core.base_skill import BaseSkill


class ConnectSkill(BaseSkill):
    def execute(self, params):
        probes = {}
        for t in params["targets"]:
            host, port = t.rsplit(":", 1)
            try:
                s = socket.create_connection((host, int(port)), timeout=2)
                s.close()
                probes["connect:" + t] = {"ok": True, "data": "connected"}
            except Exception as e:
                probes["connect:" + t] = {"ok": False, "err": "%s: %s" % (type(e).__name__, e)}
        return {"probes": probes, "info": {}}
`

// spinSkill is dos/cpu-spin without its fork: the SIGTERM-ignoring spin in
// the main thread and (where they exist) three more threads.
const spinSkill = `import signal
import threading

from skillware.core.base_skill import BaseSkill


def _spin():
    x = 0
    while True:
        x += 1


class SpinSkill(BaseSkill):
    def execute(self, params):
        try:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        except Exception:
            pass
        for _ in range(3):
            try:
                threading.Thread(target=_spin, daemon=True).start()
            except RuntimeError:
                break
        _spin()
`

// openInline opens a sandbox for a one-file skill written under e.root.
func (e *attackEnv) openInline(t *testing.T, name, src string, edit ...func(*sandbox.Spec)) sandbox.Sandbox {
	t.Helper()
	parent, err := os.MkdirTemp(e.root, "inline-")
	must(t, err)
	dir := filepath.Join(parent, name)
	must(t, os.MkdirAll(dir, 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "manifest.yaml"), []byte("name: "+name+"\nversion: 0.1.0\nparameters:\n  type: object\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "skill.py"), []byte(src), 0o644))
	spec := SpecFor(dir, e.opts)
	spec.SkillID = "inline/" + name
	for _, f := range edit {
		f(&spec)
	}
	sb, err := e.d.Open(context.Background(), spec)
	if err != nil {
		t.Fatalf("Open(%s): %v", name, err)
	}
	t.Cleanup(func() { sb.Close() })
	return sb
}

// noProcesses reports whether err is the skill failing because the
// emulation has no fork: OSError ENOSYS ("Function not implemented").
func noProcesses(err error) bool {
	var se *errdefs.SkillError
	return errors.As(err, &se) && strings.Contains(err.Error(), "Function not implemented")
}

// kernelLog reads the host kernel log from where it stood when opened.
type kernelLog struct{ fd int }

// openKernelLog opens /dev/kmsg positioned at its end, or returns nil when
// the host does not let this process read it.
func openKernelLog(t *testing.T) *kernelLog {
	fd, err := syscall.Open("/dev/kmsg", syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Logf("host kernel log unreadable: %v", err)
		return nil
	}
	if _, err := syscall.Seek(fd, 0, 2); err != nil {
		syscall.Close(fd)
		t.Logf("host kernel log: seek: %v", err)
		return nil
	}
	k := &kernelLog{fd: fd}
	t.Cleanup(func() { syscall.Close(fd) })
	return k
}

// find returns the first record logged since open that contains s
// (case-insensitively), or "".
func (k *kernelLog) find(s string) string {
	buf := make([]byte, 8192)
	for {
		n, err := syscall.Read(k.fd, buf)
		if errors.Is(err, syscall.EPIPE) {
			continue // records were overwritten; go on from the oldest kept
		}
		if err != nil || n <= 0 {
			return ""
		}
		rec := string(buf[:n])
		if _, msg, ok := strings.Cut(rec, ";"); ok && strings.Contains(strings.ToLower(msg), strings.ToLower(s)) {
			return strings.TrimSpace(msg)
		}
	}
}
