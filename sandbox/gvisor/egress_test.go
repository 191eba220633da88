//go:build linux

package gvisor_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/audit"
	"github.com/skillbox-dev/skillbox/internal/egress"
	"github.com/skillbox-dev/skillbox/internal/image/imagetest"
	"github.com/skillbox-dev/skillbox/internal/jail"
	"github.com/skillbox-dev/skillbox/internal/testpki"
	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/sandbox/gvisor"
	"github.com/skillbox-dev/skillbox/sandbox/sandboxtest"
)

// Network grants under gVisor: real sandboxes, and only loopback servers
// run by the test, reached through Spec.Resolve (as --egress-resolve).

// runOps makes one call with ops (sandboxtest.NetSkill), its egress
// events going to log.
func runOps(t *testing.T, sb sandbox.Sandbox, log *sandboxtest.EgressLog, ops ...map[string]any) []sandboxtest.NetResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(log.Ctx(), 2*time.Minute)
	defer cancel()
	p, _ := json.Marshal(map[string]any{"ops": ops})
	res, err := sb.Call(ctx, sandbox.Request{Params: p})
	if err != nil {
		t.Fatalf("call: %v", err)
	}
	var v struct{ Out []sandboxtest.NetResult }
	if err := json.Unmarshal(res.Value, &v); err != nil || len(v.Out) != len(ops) {
		t.Fatalf("result %s: %v", res.Value, err)
	}
	return v.Out
}

// server is a loopback HTTP(S) test server that counts its requests and
// says whether it saw the X-Api-Key header's value.
func server(name string, hits *atomic.Int64, key string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"server": name, "path": r.URL.Path,
			"key": strconv.FormatBool(key != "" && r.Header.Get("X-Api-Key") == key)})
	})
}

var loopback = netip.MustParseAddr("127.0.0.1")

// TestEgressAllowlist: a skill granted api.test (127.0.0.1 by
// Spec.Resolve) gets the loopback server's answer through the proxy, sees
// the proxy's variables and a read-only CA bundle; a host not granted is
// refused by the proxy (403, audited to the call); a direct connection to
// the server, bypassing the proxy, fails and reaches nothing, as do UDP
// to the host's loopback and name resolution. In each mode.
func TestEgressAllowlist(t *testing.T) {
	d := driver(t)
	var hits atomic.Int64
	srv := httptest.NewServer(server("plain", &hits, ""))
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	var datagrams atomic.Int64
	go func() {
		buf := make([]byte, 100)
		for {
			if _, _, err := udp.ReadFrom(buf); err != nil {
				return
			}
			datagrams.Add(1)
		}
	}()
	for _, mode := range []sandbox.Mode{sandbox.ModeSingleUse, sandbox.ModeSession} {
		t.Run(string(mode), func(t *testing.T) {
			sb, err := d.Open(context.Background(), sandbox.Spec{
				SkillID: "test/egress", BundleDir: bundle(t, sandboxtest.NetSkill), Mode: mode,
				Network: []sandbox.HostPort{{Host: "api.test"}},
				Resolve: map[string][]netip.Addr{"api.test": {loopback}},
				Env:     map[string]string{"NO_PROXY": "*"},
			})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer sb.Close()
			for call := range 2 { // a session's second call uses the same sandbox
				var log sandboxtest.EgressLog
				before := hits.Load()
				out := runOps(t, sb, &log,
					map[string]any{"op": "get", "url": fmt.Sprintf("http://api.test:%d/granted", port)},
					map[string]any{"op": "get", "url": fmt.Sprintf("http://other.test:%d/refused", port)},
					map[string]any{"op": "get", "url": fmt.Sprintf("http://127.0.0.1:%d/literal", port)},
					map[string]any{"op": "tcp", "host": "127.0.0.1", "port": port},
					map[string]any{"op": "view"},
					map[string]any{"op": "udp", "host": "127.0.0.1", "port": udp.LocalAddr().(*net.UDPAddr).Port},
					map[string]any{"op": "dns", "name": "api.test"},
				)
				if o := out[0]; o.Status != float64(200) || !strings.Contains(o.Body, `"path":"/granted"`) {
					t.Errorf("call %d: HTTP to the granted host: %+v", call, o)
				}
				log.Wait(t, "the granted request", func(e audit.Egress) bool {
					return e.Host == "api.test" && e.Decision == egress.DecisionAllow
				})
				if o := out[1]; o.Status != float64(403) || !strings.Contains(o.Body, "not in the allowlist") {
					t.Errorf("call %d: host not granted: %+v", call, o)
				}
				log.Wait(t, "the host not granted", func(e audit.Egress) bool {
					return e.Host == "other.test" && e.Decision == egress.DecisionDeny && e.Status == 403
				})
				if o := out[2]; o.Status != float64(403) {
					t.Errorf("call %d: an address literal to loopback, not granted: %+v", call, o)
				}
				if o := out[3]; o.Status != nil || o.Err == "" {
					t.Errorf("call %d: a direct connection bypassing the proxy: %+v", call, o)
				}
				if o := out[5]; o.Status != nil || o.Err == "" {
					t.Errorf("call %d: UDP to the host's loopback: %+v", call, o)
				}
				if o := out[6]; o.Status != nil || o.Err == "" {
					t.Errorf("call %d: name resolution in the sandbox: %+v", call, o)
				}
				if n := hits.Load() - before; n != 1 {
					t.Errorf("call %d: the server got %d requests, want 1 (the granted one)", call, n)
				}
				view := out[4]
				for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "ALL_PROXY"} {
					if view.Env[k] != "http://"+jail.ProxyAddr {
						t.Errorf("env %s = %q", k, view.Env[k])
					}
				}
				if _, ok := view.Env["NO_PROXY"]; ok {
					t.Errorf("NO_PROXY reached the skill: %q", view.Env["NO_PROXY"])
				}
				if n := datagrams.Load(); n != 0 {
					t.Errorf("call %d: the host's UDP listener got %d datagrams", call, n)
				}
				if view.Env["SSL_CERT_FILE"] != egress.DefaultCAFile || !strings.Contains(view.CA, "BEGIN CERTIFICATE") || view.CAWritable {
					t.Errorf("CA bundle: SSL_CERT_FILE %q, %d bytes, writable %v (%s)", view.Env["SSL_CERT_FILE"], len(view.CA), view.CAWritable, view.Err)
				}
			}
		})
	}
}

// TestEgressSecretBinding: a secret bound to api.test reaches that host as
// its real value over HTTPS (intercepted with the proxy's CA, which the
// sandbox's bundle holds; the upstream is verified with Spec.CACerts); the
// skill sees only the placeholder, and the placeholder sent to another
// granted host is refused.
func TestEgressSecretBinding(t *testing.T) {
	d := driver(t)
	const value = "sk-live-REAL-SECRET-0123456789"
	placeholder := egress.NewPlaceholder()
	pki := testpki.New(t, "api.test", "other.test")
	var hits atomic.Int64
	srv := httptest.NewUnstartedServer(server("tls", &hits, value))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pki.Leaf}}
	srv.StartTLS()
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	sb, err := d.Open(context.Background(), sandbox.Spec{
		SkillID: "test/secret", BundleDir: bundle(t, sandboxtest.NetSkill),
		Network: []sandbox.HostPort{{Host: "api.test"}, {Host: "other.test"}},
		Resolve: map[string][]netip.Addr{"api.test": {loopback}, "other.test": {loopback}},
		Env:     map[string]string{"API_KEY": placeholder},
		Secrets: []sandbox.SecretBinding{{Name: "API_KEY", Placeholder: placeholder, Value: value,
			Hosts: []sandbox.HostPort{{Host: "api.test"}}}},
		CACerts: pki.CAPEM,
	})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer sb.Close()
	var log sandboxtest.EgressLog
	hdr := map[string]string{"X-Api-Key": placeholder}
	out := runOps(t, sb, &log,
		map[string]any{"op": "view"},
		map[string]any{"op": "get", "url": fmt.Sprintf("https://api.test:%d/bound", port), "headers": hdr},
		map[string]any{"op": "get", "url": fmt.Sprintf("https://other.test:%d/unbound", port), "headers": hdr},
	)
	raw, _ := json.Marshal(out)
	if strings.Contains(string(raw), value) {
		t.Errorf("LEAK: the skill saw the secret's value: %s", raw)
	}
	if out[0].Env["API_KEY"] != placeholder {
		t.Errorf("the skill's API_KEY = %q, want the placeholder", out[0].Env["API_KEY"])
	}
	if o := out[1]; o.Status != float64(200) || !strings.Contains(o.Body, `"key":"true"`) {
		t.Errorf("request to the bound host: %+v", o)
	}
	// other.test is tunnelled untouched (no secret is bound to it): it
	// gets the placeholder, never the value.
	if o := out[2]; strings.Contains(o.Body, `"key":"true"`) {
		t.Errorf("the value reached a host it is not bound to: %+v", o)
	}
	log.Wait(t, "the substitution", func(e audit.Egress) bool {
		return e.Host == "api.test" && e.Decision == egress.DecisionAllow && len(e.Secrets) > 0
	})
}

// TestEgressContainerImage: an image skill with a grant reaches the granted
// loopback server through the proxy; its CA bundle is at the jail's
// fallback path (an image's own /etc is never bound over), read-only, and
// nothing of it lands in the unpacked image.
func TestEgressContainerImage(t *testing.T) {
	tmp := t.TempDir()
	cache := filepath.Join(t.TempDir(), "images")
	d := gvisor.New(gvisor.Options{TempDir: tmp, ImageCache: cache})
	if c := d.Probe(context.Background()); !c.Available {
		t.Skipf("runsc: %s", c.Reason)
	}
	var hits atomic.Int64
	srv := httptest.NewServer(server("plain", &hits, ""))
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	dir := bundle(t, sandboxtest.NetSkill)
	imagetest.PythonImage(t, filepath.Join(dir, "image"))
	sb, err := d.Open(context.Background(), sandbox.Spec{
		SkillID: "test/image-egress", BundleDir: dir, Container: &sandbox.Container{Image: "oci:image"},
		Network: []sandbox.HostPort{{Host: "api.test"}},
		Resolve: map[string][]netip.Addr{"api.test": {loopback}},
	})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer sb.Close()
	var log sandboxtest.EgressLog
	out := runOps(t, sb, &log,
		map[string]any{"op": "get", "url": fmt.Sprintf("http://api.test:%d/granted", port)},
		map[string]any{"op": "tcp", "host": "127.0.0.1", "port": port},
		map[string]any{"op": "view"},
	)
	if o := out[0]; o.Status != float64(200) || !strings.Contains(o.Body, `"path":"/granted"`) {
		t.Errorf("HTTP to the granted host: %+v", o)
	}
	if o := out[1]; o.Status != nil || o.Err == "" {
		t.Errorf("a direct connection bypassing the proxy: %+v", o)
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("the server got %d requests, want 1", n)
	}
	view := out[2]
	if ca := view.Env["SSL_CERT_FILE"]; ca == egress.DefaultCAFile || !strings.Contains(view.CA, "BEGIN CERTIFICATE") || view.CAWritable {
		t.Errorf("CA bundle: SSL_CERT_FILE %q (want the fallback, not the image's own), %d bytes, writable %v (%s)", ca, len(view.CA), view.CAWritable, view.Err)
	}
	filepath.WalkDir(cache, func(p string, e os.DirEntry, err error) error {
		if err == nil && strings.Contains(p, ".skillbox-egress") {
			t.Errorf("the unpacked image gained %s", p)
		}
		return nil
	})
}
