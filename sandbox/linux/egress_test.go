//go:build linux

package linux

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/audit"
	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/egress"
	"github.com/skillbox-dev/skillbox/internal/jail"
	"github.com/skillbox-dev/skillbox/internal/pyinterp"
	"github.com/skillbox-dev/skillbox/internal/testpki"
	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/sandbox/sandboxtest"
)

// The egress acceptance tests (issue 5): real jails, and only loopback
// servers run by the test. Names resolve through Spec.Resolve or a fake
// resolver (newTestDriver); nothing asks a real DNS server.

// netSkill, netResult and auditLog are sandboxtest's, shared with the
// gvisor backend's egress tests.
const netSkill = sandboxtest.NetSkill

type (
	netResult = sandboxtest.NetResult
	auditLog  = sandboxtest.EgressLog
)

// runOps makes one call with ops and returns their results.
func runOps(t *testing.T, sb sandbox.Sandbox, ctx context.Context, config map[string]string, ops ...map[string]any) []netResult {
	t.Helper()
	p, _ := json.Marshal(map[string]any{"ops": ops})
	res, err := sb.Call(ctx, sandbox.Request{Params: p, Config: config})
	if err != nil {
		t.Fatalf("call: %v", err)
	}
	var v struct{ Out []netResult }
	if err := json.Unmarshal(res.Value, &v); err != nil || len(v.Out) != len(ops) {
		t.Fatalf("result %s: %v", res.Value, err)
	}
	return v.Out
}

// testPKI is a CA and a leaf for the given names, for the loopback TLS
// server; the jail trusts caFile (granted as a read path) explicitly.
type testPKI struct {
	pool   *x509.CertPool
	leaf   tls.Certificate
	caFile string
}

func newPKI(t *testing.T, names ...string) *testPKI {
	t.Helper()
	ca := testpki.New(t, names...)
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	return &testPKI{pool: ca.Pool, leaf: ca.Leaf, caFile: ca.WriteCA(t, dir)}
}

// seen records what a loopback test server received.
type seen struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (s *seen) handler(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.reqs = append(s.reqs, r.Clone(context.Background()))
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"server": name, "host": r.Host, "path": r.URL.Path,
			"key_seen": strconv.FormatBool(r.Header.Get("X-Api-Key") != "")})
	})
}

func (s *seen) all() []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*http.Request(nil), s.reqs...)
}

func portOfURL(t testing.TB, u string) int {
	t.Helper()
	pu, _ := url.Parse(u)
	p, err := strconv.Atoi(pu.Port())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var loopback = netip.MustParseAddr("127.0.0.1")

// fakeDNS answers from a map: the DNS-rebinding test's resolver.
type fakeDNS map[string][]netip.Addr

func (f fakeDNS) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := f[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// egressDriver returns a driver whose proxies use a fake resolver (and
// trust roots for intercepted upstreams).
func egressDriver(opts Options, roots *x509.CertPool) *Driver {
	return newTestDriver(opts, testSeams{resolver: fakeDNS{"rebind.test": {loopback}}, roots: roots})
}

func openWith(t *testing.T, d *Driver, spec sandbox.Spec) sandbox.Sandbox {
	t.Helper()
	requireRoot(t)
	if spec.SkillID == "" {
		spec.SkillID = "test/egress"
	}
	sb, err := d.Open(context.Background(), spec)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { sb.Close() })
	return sb
}

// TestEgressAllowlist: with a grant for api.test (mapped to 127.0.0.1 by
// Spec.Resolve), the skill reaches the loopback test servers over HTTP and
// HTTPS (CONNECT, tunnelled untouched) through the proxy, and nothing else:
// an unlisted host gets 403 and an audit event, an address literal to
// loopback and a name that resolves to 127.0.0.1 without an explicit grant
// are refused, and direct TCP (to the server, to the proxy port's
// neighbours), UDP and DNS fail. It runs in each exec mode.
func TestEgressAllowlist(t *testing.T) {
	requireRoot(t)
	var hits seen
	plain := httptest.NewServer(hits.handler("plain"))
	defer plain.Close()
	pki := newPKI(t, "api.test")
	tlsSrv := httptest.NewUnstartedServer(hits.handler("tls"))
	tlsSrv.TLS = &tls.Config{Certificates: []tls.Certificate{pki.leaf}}
	tlsSrv.StartTLS()
	defer tlsSrv.Close()
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	udpGot := make(chan struct{}, 10)
	go func() {
		buf := make([]byte, 100)
		for {
			if _, _, err := udp.ReadFrom(buf); err != nil {
				return
			}
			udpGot <- struct{}{}
		}
	}()
	hp, tp := portOfURL(t, plain.URL), portOfURL(t, tlsSrv.URL)
	udpPort := udp.LocalAddr().(*net.UDPAddr).Port

	for _, mode := range []struct {
		name string
		opts Options
		mode sandbox.Mode
	}{{"zygote", Options{Exec: ExecZygote}, ""}, {"cold", Options{Exec: ExecCold}, ""},
		{"prestart", Options{Exec: ExecPrestart}, ""}, {"session", Options{}, sandbox.ModeSession}} {
		t.Run(mode.name, func(t *testing.T) {
			before := len(hits.all())
			d := egressDriver(mode.opts, nil)
			sb := openWith(t, d, sandbox.Spec{
				BundleDir: bundle(t, netSkill), Mode: mode.mode,
				Network: []sandbox.HostPort{{Host: "api.test"}, {Host: "rebind.test"}},
				Resolve: map[string][]netip.Addr{"api.test": {loopback}},
				// The skill trusts the test server's CA explicitly.
				ReadPaths: []string{filepath.Dir(pki.caFile)},
			})
			var log auditLog
			out := runOps(t, sb, log.Ctx(), nil,
				map[string]any{"op": "get", "url": fmt.Sprintf("http://api.test:%d/plain", hp)},
				map[string]any{"op": "get", "url": fmt.Sprintf("https://api.test:%d/tls", tp), "cafile": pki.caFile},
				map[string]any{"op": "get", "url": fmt.Sprintf("http://other.test:%d/", hp)},
				map[string]any{"op": "get", "url": fmt.Sprintf("http://127.0.0.1:%d/", hp)},
				map[string]any{"op": "get", "url": fmt.Sprintf("https://127.0.0.1:%d/", tp)},
				map[string]any{"op": "get", "url": fmt.Sprintf("http://rebind.test:%d/", hp)},
				map[string]any{"op": "get", "url": fmt.Sprintf("https://rebind.test:%d/", tp)},
				map[string]any{"op": "tcp", "host": "127.0.0.1", "port": hp},
				map[string]any{"op": "tcp", "host": "127.0.0.1", "port": tp},
				map[string]any{"op": "tcp", "host": "::1", "port": hp},
				map[string]any{"op": "tcp", "host": "127.0.0.1", "port": proxyPort - 1},
				map[string]any{"op": "tcp", "host": "127.0.0.1", "port": proxyPort + 1},
				map[string]any{"op": "tcp", "host": "::1", "port": proxyPort},
				// Multipath TCP (IPPROTO_MPTCP), which Landlock's TCP rules
				// do not cover on every kernel: the namespace still has no
				// route.
				map[string]any{"op": "tcp", "host": "127.0.0.1", "port": hp, "proto": 262},
				map[string]any{"op": "udp", "host": "127.0.0.1", "port": udpPort},
				map[string]any{"op": "dns", "name": "api.test"},
				map[string]any{"op": "dns", "name": "localhost"},
			)
			for i := 3; i < len(out); i++ {
				t.Logf("refused %s: status %v err %q body %.100q", out[i].Op, out[i].Status, out[i].Err, out[i].Body)
			}
			if o := out[0]; o.Status != float64(200) || !strings.Contains(o.Body, `"server":"plain"`) {
				t.Errorf("HTTP to an allowlisted host: %+v", o)
			}
			if o := out[1]; o.Status != float64(200) || !strings.Contains(o.Body, `"server":"tls"`) {
				t.Errorf("HTTPS (CONNECT) to an allowlisted host: %+v", o)
			}
			if o := out[2]; o.Status != float64(403) || !strings.Contains(o.Body, "not in the allowlist") {
				t.Errorf("unlisted host: %+v", o)
			}
			log.Wait(t, "unlisted host", func(e audit.Egress) bool {
				return e.Host == "other.test" && e.Decision == egress.DecisionDeny && e.Status == 403
			})
			for i, what := range map[int]string{3: "HTTP to an IP literal", 4: "CONNECT to an IP literal"} {
				if o := out[i]; !refused(o) || !strings.Contains(o.Body+o.Err, "403") && o.Status != float64(403) {
					t.Errorf("%s: %+v", what, o)
				}
			}
			log.Wait(t, "IP literal", func(e audit.Egress) bool { return e.Host == "127.0.0.1" && e.Decision == egress.DecisionDeny })
			for _, i := range []int{5, 6} {
				if o := out[i]; !refused(o) {
					t.Errorf("DNS rebinding (name resolving to 127.0.0.1 without a grant): %+v", o)
				}
			}
			ev := log.Wait(t, "rebinding", func(e audit.Egress) bool { return e.Host == "rebind.test" })
			if ev.Decision != egress.DecisionDeny || !strings.Contains(ev.Grant, "--egress-resolve rebind.test=127.0.0.1") {
				t.Errorf("rebinding event: %+v", ev)
			}
			// Everything from op 7 on bypasses the proxy: TCP, UDP, DNS.
			for _, o := range out[7:] {
				if o.Status != nil || o.Err == "" {
					t.Errorf("direct %s bypassing the proxy succeeded: %+v", o.Op, o)
				}
			}
			select {
			case <-udpGot:
				t.Errorf("the host UDP listener received a datagram from the jail")
			case <-time.After(100 * time.Millisecond):
			}
			// Only the two allowed requests reached the servers, both
			// through the proxy.
			if got := len(hits.all()) - before; got != 2 {
				t.Errorf("servers saw %d requests, want 2", got)
			}
			log.Wait(t, "allowed HTTP", func(e audit.Egress) bool {
				return e.Method == "GET" && e.Host == "api.test" && e.Decision == egress.DecisionAllow && e.Addr == fmt.Sprintf("127.0.0.1:%d", hp)
			})
			log.Wait(t, "allowed CONNECT", func(e audit.Egress) bool {
				return e.Method == "CONNECT" && e.Host == "api.test" && e.Decision == egress.DecisionAllow && !e.Intercepted
			})
			// A second call works too, and reports to its own sink.
			var log2 auditLog
			out = runOps(t, sb, log2.Ctx(), nil, map[string]any{"op": "get", "url": fmt.Sprintf("http://api.test:%d/again", hp)})
			if out[0].Status != float64(200) {
				t.Errorf("second call: %+v", out[0])
			}
			log2.Wait(t, "second call", func(e audit.Egress) bool { return e.Host == "api.test" })
			for _, e := range log.Events() {
				if strings.Contains(e.Host, "again") {
					t.Errorf("second call's event went to the first call: %+v", e)
				}
			}
		})
	}
}

// refused reports whether a request was refused: a 403 from the proxy, or
// (for CONNECT, where urllib raises on a non-200 answer) an error naming it.
func refused(o netResult) bool {
	if o.Status == float64(403) {
		return true
	}
	return o.Status == nil && strings.Contains(o.Err, "403")
}

// TestEgressSecretBinding: a secret bound to api.test reaches that host as
// its real value (over HTTPS, intercepted by the proxy's ephemeral CA that
// the jail trusts through SSL_CERT_FILE), while the skill only ever sees
// the placeholder — in its environment, its config, its processes'
// environ and the answers it gets; the placeholder sent to another
// allowlisted host is blocked and audited; the jail config never carries
// the value.
func TestEgressSecretBinding(t *testing.T) {
	requireRoot(t)
	const value = "sk-live-REAL-SECRET-0123456789"
	placeholder := egress.NewPlaceholder()
	pki := newPKI(t, "api.test", "other.test")
	var hits seen
	srv := httptest.NewUnstartedServer(hits.handler("tls"))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pki.leaf}}
	srv.StartTLS()
	defer srv.Close()
	port := portOfURL(t, srv.URL)
	plain := httptest.NewServer(hits.handler("plain"))
	defer plain.Close()
	hp := portOfURL(t, plain.URL)
	for _, mode := range []struct {
		name string
		opts Options
		mode sandbox.Mode
	}{{"zygote", Options{Exec: ExecZygote}, ""}, {"cold", Options{Exec: ExecCold}, ""},
		{"prestart", Options{Exec: ExecPrestart}, ""}, {"session", Options{}, sandbox.ModeSession}} {
		t.Run(mode.name, func(t *testing.T) {
			before := len(hits.all())
			d := egressDriver(mode.opts, pki.pool)
			spec := sandbox.Spec{
				BundleDir: bundle(t, netSkill), Mode: mode.mode,
				Network: []sandbox.HostPort{{Host: "api.test"}, {Host: "other.test"}},
				Resolve: map[string][]netip.Addr{"api.test": {loopback}, "other.test": {loopback}},
				Env:     map[string]string{"API_KEY": placeholder},
				Secrets: []sandbox.SecretBinding{{Name: "API_KEY", Placeholder: placeholder, Value: value,
					Hosts: []sandbox.HostPort{{Host: "api.test"}}}},
				ReadPaths: []string{filepath.Dir(pki.caFile)},
			}
			sb := openWith(t, d, spec)
			// That no jail config carries the value is internal/jail's
			// TestConfigHoldsNoSecret.
			var log auditLog
			hdr := map[string]string{"X-Api-Key": placeholder}
			out := runOps(t, sb, log.Ctx(), map[string]string{"API_KEY": placeholder},
				map[string]any{"op": "view"},
				map[string]any{"op": "get", "url": fmt.Sprintf("https://api.test:%d/bound?key=%s", port, placeholder), "headers": hdr},
				map[string]any{"op": "get", "url": fmt.Sprintf("http://other.test:%d/unbound", hp), "headers": hdr},
				map[string]any{"op": "get", "url": fmt.Sprintf("http://other.test:%d/unbound?key=%s", hp, placeholder)},
				// HTTPS to a host without a bound secret is tunnelled
				// untouched: the proxy cannot see the placeholder, and the
				// host gets just that, never the value.
				map[string]any{"op": "get", "url": fmt.Sprintf("https://other.test:%d/tunnelled", port), "headers": hdr, "cafile": pki.caFile},
				// The value is only ever sent over TLS by default.
				map[string]any{"op": "get", "url": fmt.Sprintf("http://api.test:%d/plain", hp), "headers": hdr},
			)
			raw, _ := json.Marshal(out)
			if strings.Contains(string(raw), value) {
				t.Errorf("LEAK: the skill saw the secret's value: %s", raw)
			}
			view := out[0]
			if view.Env["API_KEY"] != placeholder || view.Config["API_KEY"] != placeholder {
				t.Errorf("skill's view: env %q config %q, want the placeholder", view.Env["API_KEY"], view.Config["API_KEY"])
			}
			for k, want := range map[string]string{"HTTPS_PROXY": "http://" + jail.ProxyAddr, "http_proxy": "http://" + jail.ProxyAddr,
				"ALL_PROXY": "http://" + jail.ProxyAddr, "SSL_CERT_FILE": egress.DefaultCAFile, "REQUESTS_CA_BUNDLE": egress.DefaultCAFile} {
				if view.Env[k] != want {
					t.Errorf("env %s = %q, want %q", k, view.Env[k], want)
				}
			}
			if _, ok := view.Env["NO_PROXY"]; ok {
				t.Errorf("NO_PROXY set: %q", view.Env["NO_PROXY"])
			}
			if !strings.Contains(view.CA, "BEGIN CERTIFICATE") || view.CAWritable {
				t.Errorf("CA bundle in the jail: %d bytes, writable %v", len(view.CA), view.CAWritable)
			}
			if o := out[1]; o.Status != float64(200) || !strings.Contains(o.Body, `"key_seen":"true"`) {
				t.Errorf("request to the bound host: %+v", o)
			}
			if o := out[2]; !refused(o) {
				t.Errorf("placeholder in a header to an unbound host: %+v", o)
			}
			if o := out[3]; !refused(o) {
				t.Errorf("placeholder in the query to an unbound host: %+v", o)
			}
			if o := out[4]; o.Status != float64(200) || !strings.Contains(o.Body, `"key_seen":"true"`) {
				t.Errorf("tunnelled request to an unbound host: %+v", o)
			}
			if o := out[5]; !refused(o) {
				t.Errorf("placeholder over plain HTTP to the bound host: %+v", o)
			}
			reqs := hits.all()[before:]
			if len(reqs) != 2 {
				t.Fatalf("servers saw %d requests, want 2 (the bound one, the tunnelled one)", len(reqs))
			}
			if got := reqs[1].Header.Get("X-Api-Key"); got != placeholder || reqs[1].URL.Path != "/tunnelled" {
				t.Errorf("unbound host received X-Api-Key %q at %s, want the placeholder", got, reqs[1].URL.Path)
			}
			if got := reqs[0].Header.Get("X-Api-Key"); got != value {
				t.Errorf("server received X-Api-Key %q, want the real value", got)
			}
			if got := reqs[0].URL.Query().Get("key"); got != value {
				t.Errorf("server received key=%q, want the real value", got)
			}
			ev := log.Wait(t, "bound request", func(e audit.Egress) bool { return e.Host == "api.test" && e.Method == "GET" })
			if ev.Decision != egress.DecisionAllow || !ev.Intercepted || len(ev.Secrets) != 1 || ev.Secrets[0] != "API_KEY" {
				t.Errorf("bound request event: %+v", ev)
			}
			log.Wait(t, "placeholder to unbound host", func(e audit.Egress) bool {
				return e.Host == "other.test" && e.Decision == egress.DecisionDeny && strings.Contains(e.Reason, "API_KEY")
			})
		})
	}
}

// TestEgressRefusals: a Spec the proxy cannot honour is refused before a
// jail starts.
func TestEgressRefusals(t *testing.T) {
	requireRoot(t)
	dir := bundle(t, "        return {}")
	for name, spec := range map[string]sandbox.Spec{
		"secret without network": {Secrets: []sandbox.SecretBinding{{Name: "K", Placeholder: egress.NewPlaceholder(), Value: "v",
			Hosts: []sandbox.HostPort{{Host: "api.test"}}}}},
		"bad rule": {Network: []sandbox.HostPort{{Host: "api.test", Port: 70000}}},
	} {
		t.Run(name, func(t *testing.T) {
			spec.BundleDir = dir
			_, err := New(Options{}).Open(context.Background(), spec)
			if errdefs.KindOf(err) != errdefs.Invalid {
				t.Fatalf("got %v (kind %s), want invalid", err, errdefs.KindOf(err))
			}
		})
	}
}

// BenchmarkEgressLatency measures the proxy's added latency per request as
// a jailed skill sees it: each iteration the skill times N requests to the
// loopback server through the proxy; the same Python client timed on the
// host without a proxy is the baseline (direct loopback).
func BenchmarkEgressLatency(b *testing.B) {
	requireRoot(b)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"ok":true}`)
	}))
	defer srv.Close()
	port := portOfURL(b, srv.URL)
	const body = `        import http.client, time, os
        host, port, n = params["host"], params["port"], params["n"]
        proxy = os.environ.get("HTTP_PROXY")
        if proxy:
            ph, pp = proxy[len("http://"):].split(":")
            c = http.client.HTTPConnection(ph, int(pp), timeout=10)
            target = "http://%s:%d/" % (host, port)
        else:
            c = http.client.HTTPConnection(host, port, timeout=10)
            target = "/"
        ts = []
        for i in range(n + 20):
            t0 = time.perf_counter()
            c.request("GET", target, headers={"Host": "%s:%d" % (host, port)})
            r = c.getresponse(); r.read()
            if r.status != 200:
                raise Exception("status %d" % r.status)
            if i >= 20:
                ts.append(time.perf_counter() - t0)
        ts.sort()
        return {"p50": ts[len(ts)//2], "p99": ts[len(ts)*99//100]}`
	d := New(Options{})
	proxied, err := d.Open(context.Background(), sandbox.Spec{SkillID: "bench/egress", BundleDir: bundle(b, body),
		Network: []sandbox.HostPort{{Host: "api.test"}}, Resolve: map[string][]netip.Addr{"api.test": {loopback}}})
	if err != nil {
		b.Fatal(err)
	}
	defer proxied.Close()
	// The baseline: the same client code on the host's interpreter (same
	// binary), straight to the loopback server.
	direct := pythonOnHost(b, body)
	var p50p, p50d, p99p float64
	for i := 0; i < b.N; i++ {
		p, _ := json.Marshal(map[string]any{"host": "api.test", "port": port, "n": 500})
		res, err := proxied.Call(context.Background(), sandbox.Request{Params: p})
		if err != nil {
			b.Fatal(err)
		}
		var v struct{ P50, P99 float64 }
		json.Unmarshal(res.Value, &v)
		p50p, p99p = v.P50, v.P99
		dv := direct(map[string]any{"host": "127.0.0.1", "port": port, "n": 500})
		p50d = dv["p50"]
	}
	b.ReportMetric(p50d*1e6, "direct-p50-µs")
	b.ReportMetric(p50p*1e6, "proxied-p50-µs")
	b.ReportMetric((p50p-p50d)*1e6, "added-p50-µs")
	b.ReportMetric(p99p*1e6, "proxied-p99-µs")
}

// pythonOnHost returns a function running execute's body (as written for
// skillSrc) on the host's interpreter, outside any jail and proxy.
func pythonOnHost(b *testing.B, body string) func(params map[string]any) map[string]float64 {
	in, err := pyinterp.Resolve(context.Background(), "")
	if err != nil {
		b.Fatal(err)
	}
	var src strings.Builder
	src.WriteString("import json, sys, os\nos.environ.pop('HTTP_PROXY', None)\ndef f(params):\n")
	for _, l := range strings.Split(body, "\n") {
		src.WriteString(strings.TrimPrefix(l, "    ") + "\n")
	}
	src.WriteString("print(json.dumps(f(json.loads(sys.argv[1]))))\n")
	return func(params map[string]any) map[string]float64 {
		p, _ := json.Marshal(params)
		cmd := exec.Command(in.Executable, "-c", src.String(), string(p))
		cmd.Env = []string{"PATH=/usr/bin:/bin"}
		out, err := cmd.Output()
		if err != nil {
			b.Fatalf("host python: %v %s", err, out)
		}
		var v map[string]float64
		if err := json.Unmarshal(out, &v); err != nil {
			b.Fatalf("host python: %s", out)
		}
		return v
	}
}

// TestEgressOutsideCallsGoToOpenSink: what a skill's import does outside a
// call (in a zygote's first child, in a pre-forked child) is audited to the
// sink given to Open, not to the call that happened to start the zygote:
// here no zygote exists at Open and the first call starts one.
func TestEgressOutsideCallsGoToOpenSink(t *testing.T) {
	requireRoot(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer srv.Close()
	port := portOfURL(t, srv.URL)
	dir := bundle(t, `        return {"pid": os.getpid()}`)
	src := fmt.Sprintf("import urllib.request\nurllib.request.urlopen('http://api.test:%d/import', timeout=10).read()\n", port)
	old, _ := os.ReadFile(filepath.Join(dir, "skill.py"))
	if err := os.WriteFile(filepath.Join(dir, "skill.py"), append([]byte(src), old...), 0o644); err != nil {
		t.Fatal(err)
	}
	var open, call auditLog
	sb, err := New(Options{MinIdle: -1, PoolSize: 1}).Open(open.Ctx(), sandbox.Spec{
		SkillID: "test/egress", BundleDir: dir,
		Network: []sandbox.HostPort{{Host: "api.test"}},
		Resolve: map[string][]netip.Addr{"api.test": {loopback}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	if _, err := sb.Call(call.Ctx(), sandbox.Request{}); err != nil {
		t.Fatal(err)
	}
	// The zygote the call started checked the import in its first child
	// before the call began, and the next child (pre-forked after the
	// call) imports outside any call too: both are the sandbox's.
	open.Wait(t, "the imports outside the call", func(e audit.Egress) bool { return e.Host == "api.test" })
	if evs := call.Events(); len(evs) != 0 {
		t.Errorf("the call's sink got what happened outside it: %+v", evs)
	}
}
