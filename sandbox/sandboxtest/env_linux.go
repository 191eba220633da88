package sandboxtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/sandbox"
)

// attackEnv is the host side of the attack suite: canaries the skills try
// to reach, listeners that count what reaches them, and a canary process.
type attackEnv struct {
	d      sandbox.Driver
	opts   Options
	corpus string
	root   string // every bundle copy and canary lives under it
	nonce  string // appears in paths and params, never secret
	token  string // the secret: must never appear in anything a skill returns

	canaryDir, canaryFile, writeDir string

	tcpPort, udpPort  int
	tcpHits, udpHits  atomic.Int64
	abstractName      string
	abstractHits      atomic.Int64
	unixPath          string
	unixHits          atomic.Int64
	addrs             []string
	sleeper           *exec.Cmd
	closers           []func()
	netAddr, netRoute string
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func newAttackEnv(t *testing.T, d sandbox.Driver, opts Options, corpus string) *attackEnv {
	e := &attackEnv{d: d, opts: opts, corpus: corpus, nonce: randHex(6)}
	e.token = "SKILLBOX-CANARY-" + strings.ToUpper(randHex(12))
	root, err := os.MkdirTemp("", "sbt-"+e.nonce+"-")
	if err != nil {
		t.Fatal(err)
	}
	e.root = root
	e.closers = append(e.closers, func() { os.RemoveAll(root) })
	e.canaryDir = filepath.Join(root, "host")
	e.writeDir = filepath.Join(e.canaryDir, "writes")
	e.canaryFile = filepath.Join(e.canaryDir, "secret.txt")
	must(t, os.MkdirAll(e.writeDir, 0o777))
	must(t, os.WriteFile(e.canaryFile, []byte(e.token+"\n"), 0o644))
	// World-readable on purpose: a jail's unprivileged uid must be stopped
	// by isolation, not by file modes.
	os.Chmod(root, 0o755)
	os.Chmod(e.canaryDir, 0o777)
	os.Chmod(e.writeDir, 0o777)

	// The canary variable is in this process's environment while skills
	// run, so an inherited environment would carry it.
	t.Setenv("SKILLBOX_CANARY_ENV", e.token)

	// TCP and UDP listeners on every host address (dual stack).
	ln, err := net.Listen("tcp", ":0")
	must(t, err)
	e.tcpPort = ln.Addr().(*net.TCPAddr).Port
	e.closers = append(e.closers, func() { ln.Close() })
	go acceptCount(ln, &e.tcpHits)
	uc, err := net.ListenPacket("udp", ":0")
	must(t, err)
	e.udpPort = uc.LocalAddr().(*net.UDPAddr).Port
	e.closers = append(e.closers, func() { uc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := uc.ReadFrom(buf); err != nil {
				return
			}
			e.udpHits.Add(1)
		}
	}()
	e.abstractName = "skillbox-canary-" + e.nonce
	al, err := net.Listen("unix", "@"+e.abstractName)
	must(t, err)
	e.closers = append(e.closers, func() { al.Close() })
	go acceptCount(al, &e.abstractHits)
	e.unixPath = filepath.Join(e.canaryDir, "host.sock")
	ul, err := net.Listen("unix", e.unixPath)
	must(t, err)
	os.Chmod(e.unixPath, 0o777)
	e.closers = append(e.closers, func() { ul.Close() })
	go acceptCount(ul, &e.unixHits)

	e.addrs = []string{"127.0.0.1"}
	if c, err := net.Dial("tcp6", net.JoinHostPort("::1", itoa(e.tcpPort))); err == nil {
		c.Close()
		e.addrs = append(e.addrs, "::1")
		time.Sleep(50 * time.Millisecond)
		e.tcpHits.Store(0)
	}
	if as, err := net.InterfaceAddrs(); err == nil {
		for _, a := range as {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && !ipn.IP.IsLinkLocalUnicast() {
				e.addrs = append(e.addrs, ipn.IP.String())
			}
		}
	}
	b := []byte(e.nonce)
	e.netAddr = "198.18." + itoa(int(b[0])) + "." + itoa(int(b[1]))
	e.netRoute = "198.19." + itoa(int(b[2])) + ".0"

	// A host canary process with the secret in its environment: it must
	// be neither visible nor killable from a sandbox.
	e.sleeper = exec.Command("sleep", "3600")
	e.sleeper.Env = []string{"SKILLBOX_CANARY_ENV=" + e.token}
	must(t, e.sleeper.Start())
	e.closers = append(e.closers, func() { e.sleeper.Process.Kill(); e.sleeper.Wait() })
	return e
}

func (e *attackEnv) close() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
}

func acceptCount(ln net.Listener, n *atomic.Int64) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		n.Add(1)
		c.Close()
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// repoDir is the module root (two levels above the corpus).
func (e *attackEnv) repoDir() string { return filepath.Dir(filepath.Dir(e.corpus)) }

// params is what every attack skill receives: host paths and ports to aim
// at, never the secret itself.
func (e *attackEnv) params(extra map[string]any) map[string]any {
	home, _ := os.UserHomeDir()
	var ns []string
	if b, err := os.ReadFile("/etc/resolv.conf"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) == 2 && f[0] == "nameserver" {
				ns = append(ns, f[1])
			}
		}
	}
	p := map[string]any{
		"nonce": e.nonce, "canary_file": e.canaryFile, "canary_dir": e.canaryDir, "write_dir": e.writeDir,
		"host_paths": []string{filepath.Join(home, ".bashrc"), filepath.Join(home, ".profile"),
			filepath.Join(e.repoDir(), "go.mod"), filepath.Join(e.corpus, "secrets", "home-files", "skill.py"), e.root},
		"repo_dir": e.repoDir(), "testdata_dir": e.corpus,
		"tcp_port": e.tcpPort, "udp_port": e.udpPort, "addrs": e.addrs,
		"abstract_socket": e.abstractName, "unix_socket": e.unixPath,
		"dns_names": []string{"example.com", "skillbox-canary-" + e.nonce + ".example.org"}, "nameservers": ns,
		"net_addr": e.netAddr, "net_route": e.netRoute,
		"max_bytes": 8 * e.opts.limits().Memory, "host_pids": []int{e.sleeper.Process.Pid, os.Getpid()},
	}
	for k, v := range extra {
		p[k] = v
	}
	return p
}

// bundle copies corpus skill name (category/name) into a fresh folder
// under e.root and returns the path. The copy sits in a per-call parent so
// that a planted sibling can be placed next to it.
func (e *attackEnv) bundle(t testing.TB, name string) string {
	t.Helper()
	parent, err := os.MkdirTemp(e.root, "skills-")
	must(t, err)
	os.Chmod(parent, 0o755)
	dst := filepath.Join(parent, filepath.Base(name))
	if err := CopyDir(filepath.Join(e.corpus, filepath.FromSlash(name)), dst); err != nil {
		t.Fatalf("copy bundle %s: %v", name, err)
	}
	return dst
}

// outcome is one attack call as seen by the host.
type outcome struct {
	res     *sandbox.Result
	err     error
	elapsed time.Duration
	rep     *report
}

type report struct {
	Probes map[string]probeResult     `json:"probes"`
	Info   map[string]json.RawMessage `json:"info"`
	Real   json.RawMessage            `json:"real"`
	Echo   json.RawMessage            `json:"echo"`
}

type probeResult struct {
	OK    bool            `json:"ok"`
	Data  json.RawMessage `json:"data"`
	Err   string          `json:"err"`
	Errno string          `json:"errno"`
}

// openAttack opens a sandbox for a copy of corpus skill name.
func (e *attackEnv) openAttack(t *testing.T, name string, edit ...func(*sandbox.Spec)) (sandbox.Sandbox, string) {
	t.Helper()
	dir := e.bundle(t, name)
	spec := SpecFor(dir, e.opts)
	spec.SkillID = name
	for _, f := range edit {
		f(&spec)
	}
	sb, err := e.d.Open(context.Background(), spec)
	if err != nil {
		t.Fatalf("Open(%s): %v", name, err)
	}
	// Attacks close explicitly (closeNow) before the leftover check; this
	// only covers early failures, so a second Close's error is ignored.
	t.Cleanup(func() { sb.Close() })
	return sb, dir
}

// call runs one call and applies the checks every attack gets: the secret
// never appears in the value, the captured output or the error.
func (e *attackEnv) call(t *testing.T, sb sandbox.Sandbox, extra map[string]any) outcome {
	t.Helper()
	res, err, el := Call(t, sb, e.opts, e.params(extra), nil)
	o := outcome{res: res, err: err, elapsed: el}
	e.noSecret(t, o, e.token)
	if err == nil && res != nil {
		var r report
		if json.Unmarshal(res.Value, &r) == nil {
			o.rep = &r
		}
	}
	return o
}

// noSecret fails if secret appears anywhere the caller can see.
func (e *attackEnv) noSecret(t *testing.T, o outcome, secret string) {
	t.Helper()
	for what, b := range map[string][]byte{"result": resValue(o.res), "stdout": resOut(o.res, 1), "stderr": resOut(o.res, 2)} {
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("LEAK: the secret canary appears in the %s: %s", what, excerpt(b, secret))
		}
	}
	if o.err != nil && strings.Contains(o.err.Error(), secret) {
		t.Errorf("LEAK: the secret canary appears in the error: %v", o.err)
	}
}

func resValue(r *sandbox.Result) []byte {
	if r == nil {
		return nil
	}
	return r.Value
}

func resOut(r *sandbox.Result, fd int) []byte {
	if r == nil {
		return nil
	}
	if fd == 1 {
		return r.Stdout
	}
	return r.Stderr
}

func excerpt(b []byte, s string) string {
	i := bytes.Index(b, []byte(s))
	lo, hi := max(0, i-300), min(len(b), i+len(s)+100)
	return string(b[lo:hi])
}

// mustReport fails unless the call returned a report (and skips when the
// skill could not attempt the attack here).
func mustReport(t *testing.T, o outcome) *report {
	t.Helper()
	if o.err != nil {
		t.Fatalf("attack call failed before reporting: %v", o.err)
	}
	if o.rep == nil {
		t.Fatalf("attack returned no report: %.300s", resValue(o.res))
	}
	if s, ok := o.rep.Info["skipped"]; ok {
		t.Skipf("attack not attempted: %s", s)
	}
	return o.rep
}

// mustFail asserts every named probe exists and failed; with no names, every
// probe except "info:"-prefixed ones.
func mustFail(t *testing.T, r *report, names ...string) {
	t.Helper()
	if len(names) == 0 {
		for n := range r.Probes {
			if !strings.HasPrefix(n, "info:") {
				names = append(names, n)
			}
		}
	}
	if len(names) == 0 {
		t.Fatal("report has no probes")
	}
	for _, n := range names {
		p, ok := r.Probes[n]
		switch {
		case !ok:
			t.Errorf("probe %s missing from the report", n)
		case p.OK:
			t.Errorf("NOT CONTAINED: %s succeeded (%.200s)", n, p.Data)
		}
	}
}

// hostCompare fails for every "read:<path>" or "list:<path>" probe whose data
// equals what the host itself sees at that path (a non-empty file or folder).
func hostCompare(t *testing.T, r *report) {
	t.Helper()
	for n, p := range r.Probes {
		kind, path, ok := strings.Cut(n, ":")
		if !ok || !p.OK || (kind != "read" && kind != "list") {
			continue
		}
		switch kind {
		case "read":
			var got string
			if json.Unmarshal(p.Data, &got) != nil {
				continue
			}
			b, err := os.ReadFile(path)
			if err != nil || len(b) == 0 {
				continue
			}
			if len(b) > 65536 {
				b = b[:65536]
			}
			if got == strings.ToValidUTF8(string(b), "\uFFFD") {
				t.Errorf("LEAK: host file %s is readable from the sandbox (%d bytes)", path, len(got))
			}
		case "list":
			var got []string
			if json.Unmarshal(p.Data, &got) != nil {
				continue
			}
			ents, err := os.ReadDir(path)
			if err != nil || len(ents) == 0 {
				continue
			}
			host := make([]string, 0, len(ents))
			for _, de := range ents {
				host = append(host, de.Name())
			}
			if strings.Join(got, "\x00") == strings.Join(host[:min(len(host), 200)], "\x00") {
				t.Errorf("LEAK: host folder %s is listable from the sandbox: %v", path, got)
			}
		}
	}
}

// runConcurrently runs fns at the same time and waits for all.
func runConcurrently(fns ...func()) {
	var wg sync.WaitGroup
	for _, f := range fns {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	wg.Wait()
}
