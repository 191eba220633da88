//go:build linux

package pyodide

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/egress"
	"github.com/skillbox-dev/skillbox/internal/jail"
	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/sandbox/sandboxtest"
)

// netSkill fetches params["url"] through Deno's fetch and reports the
// body, or the error, plus Deno.pid.
const netSkill = `import js
from skillware.core.base_skill import BaseSkill


class Net(BaseSkill):
    async def execute(self, params):
        out = {"pid": int(js.Deno.pid)}
        url = params.get("url")
        if url:
            try:
                r = await js.fetch(url)
                out["body"] = await r.text()
            except BaseException as e:
                out["error"] = type(e).__name__ + ": " + str(e)[:300]
        return out
`

func netBundle(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "net")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "manifest.yaml"), []byte("name: net\nversion: 0.1.0\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "skill.py"), []byte(netSkill), 0o644)
	return dir
}

func jailedDriver(t *testing.T) *Driver {
	d := testDriver(t)
	if ok, why := jailState(""); !ok {
		t.Skipf("linux jail unavailable: %s", why)
	}
	return d
}

type netReply struct {
	Pid   int    `json:"pid"`
	Body  string `json:"body"`
	Error string `json:"error"`
}

// TestJailed checks from the host that an idle worker runs in the jail:
// another network and pid namespace than this process, one of the jails' uids,
// none of the host's environment, and that calls work there (Deno is pid 1).
func TestJailed(t *testing.T) {
	d := jailedDriver(t)
	t.Setenv("SKILLBOX_HOST_CANARY", "host-env-value")
	spec := sandboxtest.SpecFor(netBundle(t), sandboxtest.Options{})
	sb := sandboxtest.Open(t, d, spec)
	b := sb.(*box)
	p := <-b.idle
	pid := p.Cmd.Process.Pid
	for _, ns := range []string{"net", "pid", "mnt", "ipc", "uts"} {
		host, _ := os.Readlink("/proc/self/ns/" + ns)
		jailed, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, ns))
		if err != nil || jailed == host {
			t.Errorf("worker %s namespace %q (%v), host's %q", ns, jailed, err, host)
		}
	}
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil || strings.Contains(string(env), "host-env-value") || strings.Contains(string(env), "PATH=") {
		t.Errorf("worker environment %q (%v) holds host variables", env, err)
	}
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	var ids [4]int
	if _, after, ok := strings.Cut(string(status), "\nUid:\t"); ok {
		fmt.Sscanf(after, "%d\t%d\t%d\t%d", &ids[0], &ids[1], &ids[2], &ids[3])
	}
	if os.Geteuid() == 0 && (!jail.IsID(ids[0]) || ids != [4]int{ids[0], ids[0], ids[0], ids[0]}) {
		t.Errorf("worker's uids %v are not one of the jails' ids:\n%s", ids, status)
	}
	if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); !strings.HasSuffix(exe, "/deno") {
		t.Errorf("worker runs %q, want deno", exe)
	}
	b.idle <- p
	res, err := sb.Call(context.Background(), sandbox.Request{Params: []byte(`{}`)})
	var got netReply
	sandboxtest.MustResult(t, res, err, &got)
	if got.Pid != 1 {
		t.Errorf("Deno.pid = %d in the jail, want 1", got.Pid)
	}
	for _, w := range res.Warnings {
		if strings.Contains(w, "without the linux jail") {
			t.Errorf("jailed call warns %q", w)
		}
	}
}

// TestNoJailWarns checks that a host without the jail runs workers
// unjailed, says so on every result and in Probe, and refuses network.
func TestNoJailWarns(t *testing.T) {
	testDriver(t)
	d := newTestDriver(seams{noJail: "fake: no namespaces"})
	c := d.Probe(context.Background())
	found := false
	for _, l := range c.Layers {
		if l.Name == "linux-jail" {
			found = !l.Available && strings.Contains(l.Detail, "fake")
		}
	}
	if !found || !c.Available {
		t.Errorf("Probe available %v, layers %+v: want available with linux-jail missing", c.Available, c.Layers)
	}
	for _, f := range c.Enforces {
		if f == sandbox.FeatureNetAllowlist {
			t.Error("net-allowlist claimed without the jail")
		}
	}
	spec := sandboxtest.SpecFor(netBundle(t), sandboxtest.Options{})
	sb := sandboxtest.Open(t, d, spec)
	for range 2 {
		res, err := sb.Call(context.Background(), sandbox.Request{Params: []byte(`{}`)})
		var got netReply
		sandboxtest.MustResult(t, res, err, &got)
		if got.Pid == 1 {
			t.Error("unjailed worker is pid 1")
		}
		if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "pyodide: running without the linux jail (fake: no namespaces)") {
			t.Errorf("warnings %q", res.Warnings)
		}
	}
	spec.Network = []sandbox.HostPort{{Host: "api.test", Port: 80}}
	if sb, err := d.Open(context.Background(), spec); err == nil {
		sb.Close()
		t.Fatal("network grant accepted without the jail")
	} else if errdefs.KindOf(err) != errdefs.Unsupported {
		t.Fatalf("error %v, want unsupported", err)
	}
}

// TestNetworkGrant: a granted host (mapped to a loopback test server with
// Spec.Resolve) is reached through the jail's egress proxy; a host not
// granted, and the server's address itself, are refused by Deno; the
// server sees only the granted requests.
func TestNetworkGrant(t *testing.T) {
	d := jailedDriver(t)
	var hits []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits = append(hits, r.Host+r.URL.Path)
		fmt.Fprint(w, "granted-body")
	}))
	defer srv.Close()
	_, portS, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ := strconv.Atoi(portS)
	loop := netip.MustParseAddr("127.0.0.1")
	spec := sandboxtest.SpecFor(netBundle(t), sandboxtest.Options{})
	spec.Network = []sandbox.HostPort{{Host: "api.test", Port: port}}
	spec.Resolve = map[string][]netip.Addr{"api.test": {loop}}
	sb := sandboxtest.Open(t, d, spec)
	call := func(url string) netReply {
		t.Helper()
		params := fmt.Sprintf(`{"url": %q}`, url)
		res, err := sb.Call(context.Background(), sandbox.Request{Params: []byte(params)})
		var got netReply
		sandboxtest.MustResult(t, res, err, &got)
		return got
	}
	if got := call(fmt.Sprintf("http://api.test:%d/ok", port)); got.Body != "granted-body" {
		t.Errorf("granted fetch: %+v", got)
	}
	for _, url := range []string{
		fmt.Sprintf("http://other.test:%d/no", port),
		fmt.Sprintf("http://127.0.0.1:%d/no", port),
		fmt.Sprintf("http://api.test:%d/no", port+1),
		"http://127.0.0.1:3128/",
	} {
		if got := call(url); got.Body != "" || !strings.Contains(got.Error, "Requires net") {
			t.Errorf("fetch %s not refused by Deno: %+v", url, got)
		}
	}
	if len(hits) != 1 || hits[0] != fmt.Sprintf("api.test:%d/ok", port) {
		t.Errorf("server saw %q, want only the granted request", hits)
	}
}

// secretSkill fetches params["url"] + the placeholder it holds for TOKEN.
const secretSkill = `import js, os
from skillware.core.base_skill import BaseSkill


class Secret(BaseSkill):
    async def execute(self, params):
        token = os.environ.get("TOKEN")
        out = {"env": token, "config": self.credential("TOKEN")}
        try:
            r = await js.fetch(params["url"] + token)
            out["body"] = await r.text()
        except BaseException as e:
            out["error"] = type(e).__name__ + ": " + str(e)[:300]
        return out
`

// TestSecretBinding: a secret bound to a host reaches the server as its
// real value (the jail's proxy intercepts TLS to the bound host and
// substitutes it), while the skill only ever holds the placeholder — in its
// environment, its config and the response, which echoes the value.
func TestSecretBinding(t *testing.T) {
	jailedDriver(t)
	const real = "real-secret-value-123"
	var seen []string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.URL.Query().Get("key"))
		fmt.Fprint(w, "echo:"+r.URL.Query().Get("key"))
	}))
	defer srv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	d := newTestDriver(seams{upstreamRoots: roots})
	_, portS, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ := strconv.Atoi(portS)
	dir := filepath.Join(t.TempDir(), "secret")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "manifest.yaml"), []byte("name: secret\nversion: 0.1.0\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "skill.py"), []byte(secretSkill), 0o644)
	placeholder := egress.NewPlaceholder()
	// httptest's certificate is for example.com: the name the skill uses.
	api := sandbox.HostPort{Host: "example.com", Port: port}
	spec := sandboxtest.SpecFor(dir, sandboxtest.Options{})
	spec.Network = []sandbox.HostPort{api}
	spec.Resolve = map[string][]netip.Addr{"example.com": {netip.MustParseAddr("127.0.0.1")}}
	spec.Secrets = []sandbox.SecretBinding{{Name: "TOKEN", Placeholder: placeholder, Value: real, Hosts: []sandbox.HostPort{api}}}
	spec.Env = map[string]string{"TOKEN": placeholder}
	sb := sandboxtest.Open(t, d, spec)
	params := fmt.Sprintf(`{"url": "https://example.com:%d/s?key="}`, port)
	res, err := sb.Call(context.Background(), sandbox.Request{Params: []byte(params), Config: map[string]string{"TOKEN": placeholder}})
	var got struct{ Env, Config, Body, Error string }
	sandboxtest.MustResult(t, res, err, &got)
	if got.Error != "" {
		t.Fatalf("fetch failed: %s", got.Error)
	}
	if len(seen) != 1 || seen[0] != real {
		t.Errorf("server saw %q, want the real value once", seen)
	}
	if got.Env != placeholder || got.Config != placeholder {
		t.Errorf("skill saw env %q, config %q; want the placeholder", got.Env, got.Config)
	}
	if strings.Contains(string(res.Value), real) || got.Body != "echo:"+placeholder {
		t.Errorf("the real value reached the skill: %s", res.Value)
	}
}

// Without the linux jail there is no egress proxy to substitute a bound
// secret, so a Spec that binds one is refused, naming why.
func TestSecretsRefusedWithoutJail(t *testing.T) {
	testDriver(t)
	d := newTestDriver(seams{noJail: "test: no jail here"})
	spec := sandboxtest.SpecFor(netBundle(t), sandboxtest.Options{})
	spec.Network = []sandbox.HostPort{{Host: "api.example.com", Port: 443}}
	spec.Secrets = []sandbox.SecretBinding{{Name: "TOKEN", Placeholder: "skillbox-secret-x", Value: "v",
		Hosts: []sandbox.HostPort{{Host: "api.example.com", Port: 443}}}}
	sb, err := d.Open(context.Background(), spec)
	if err == nil {
		sb.Close()
		t.Fatal("Open with a bound secret succeeded without the jail")
	}
	sandboxtest.AssertKind(t, err, "unsupported")
	if !strings.Contains(err.Error(), "no jail here") {
		t.Errorf("refusal does not say why: %v", err)
	}
}
