//go:build linux

package linux

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/audit"
	"github.com/skillbox-dev/skillbox/internal/egress"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// tlsSkill fetches params["url"] with urllib's defaults (no context, no
// cafile: what an unmodified skill does), then again trusting only the
// usual bundle path, then with requests (REQUESTS_CA_BUNDLE, where the
// interpreter has it), and reports what it saw of its trust.
const tlsSkill = `        import ssl, urllib.request
        usual = "/etc/ssl/certs/ca-certificates.crt"
        out = {"env": {k: os.environ.get(k) for k in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}}
        hdr = {"X-Api-Key": os.environ.get("API_KEY", "")}
        try:
            with urllib.request.urlopen(urllib.request.Request(params["url"], headers=hdr), timeout=10) as r:
                out["status"], out["body"] = r.status, r.read().decode()
        except Exception as e:
            out["err"] = "%s: %s" % (type(e).__name__, e)
        try:
            ctx = ssl.create_default_context(cafile=usual)
            with urllib.request.urlopen(params["url"], timeout=10, context=ctx) as r:
                out["usual_status"] = r.status
        except Exception as e:
            out["usual_err"] = "%s: %s" % (type(e).__name__, e)
        try:
            import requests
        except ImportError:
            out["requests"] = "absent"
        else:
            try:
                out["requests"] = requests.get(params["url"], headers=hdr, timeout=10).status_code
            except Exception as e:
                out["requests"] = "%s: %s" % (type(e).__name__, e)
        try:
            open(usual, "a").close()
            out["writable"] = True
        except OSError:
            out["writable"] = False
        return out`

type tlsResult struct {
	Env       map[string]string `json:"env"`
	Status    int               `json:"status"`
	Body      string            `json:"body"`
	Err       string            `json:"err"`
	UsualStat int               `json:"usual_status"`
	UsualErr  string            `json:"usual_err"`
	Writable  bool              `json:"writable"`
	Requests  any               `json:"requests"`
}

// TestEgressOperatorCA (issue 15 part 4): a skill granted a loopback
// HTTPS host (through the proxy: CONNECT, or interception with a secret
// bound) verifies it with urllib's defaults when the operator's CA file
// (Spec.CACerts) lists the server's CA, and fails with a certificate
// error when it does not. The bundle is read-only at the usual path, and
// the variables point at it.
func TestEgressOperatorCA(t *testing.T) {
	requireRoot(t)
	pki := newPKI(t, "api.test")
	caPEM, err := os.ReadFile(pki.caFile)
	if err != nil {
		t.Fatal(err)
	}
	var hits seen
	srv := httptest.NewUnstartedServer(hits.handler("tls"))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pki.leaf}}
	srv.StartTLS()
	defer srv.Close()
	url := fmt.Sprintf("https://api.test:%d/tls", portOfURL(t, srv.URL))
	placeholder := egress.NewPlaceholder()
	for _, tc := range []struct {
		name    string
		opts    Options
		ca      []byte
		secrets bool
		ok      bool
	}{
		{"operator CA, tunnelled", Options{}, caPEM, false, true},
		{"operator CA, tunnelled, cold", Options{Exec: ExecCold}, caPEM, false, true},
		{"operator CA, tunnelled, prestart", Options{Exec: ExecPrestart}, caPEM, false, true},
		{"no operator CA, tunnelled", Options{}, nil, false, false},
		// The proxy verifies the upstream with the operator's CA too, and
		// the skill verifies the proxy's interception CA.
		{"operator CA, intercepted", Options{}, caPEM, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(hits.all())
			spec := sandbox.Spec{
				BundleDir: bundle(t, tlsSkill),
				Network:   []sandbox.HostPort{{Host: "api.test"}},
				Resolve:   map[string][]netip.Addr{"api.test": {loopback}},
				CACerts:   tc.ca,
			}
			if tc.secrets {
				spec.Env = map[string]string{"API_KEY": placeholder}
				spec.Secrets = []sandbox.SecretBinding{{Name: "API_KEY", Placeholder: placeholder, Value: "real-value-0123456789",
					Hosts: []sandbox.HostPort{{Host: "api.test"}}}}
			}
			// No test roots for the proxy: it trusts the host's and
			// Spec.CACerts, as in production.
			sb := openWith(t, egressDriver(tc.opts, nil), spec)
			var log auditLog
			p, _ := json.Marshal(map[string]string{"url": url})
			res, err := sb.Call(log.Ctx(), sandbox.Request{Params: p})
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			var r tlsResult
			if err := json.Unmarshal(res.Value, &r); err != nil {
				t.Fatalf("result %s: %v", res.Value, err)
			}
			for _, k := range []string{"SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"} {
				if r.Env[k] != egress.DefaultCAFile {
					t.Errorf("%s = %q, want %s", k, r.Env[k], egress.DefaultCAFile)
				}
			}
			if r.Writable {
				t.Errorf("the skill can write %s", egress.DefaultCAFile)
			}
			if r.Requests == "absent" {
				t.Log("the interpreter has no requests: only urllib is checked")
			} else if tc.ok != (r.Requests == float64(200)) || !tc.ok && !strings.Contains(fmt.Sprint(r.Requests), "CERTIFICATE_VERIFY_FAILED") {
				t.Errorf("requests: %v (want ok %v)", r.Requests, tc.ok)
			}
			if !tc.ok {
				if r.Status != 0 || !strings.Contains(r.Err, "CERTIFICATE_VERIFY_FAILED") || !strings.Contains(r.UsualErr, "CERTIFICATE_VERIFY_FAILED") {
					t.Errorf("without the operator's CA: %+v, want a certificate error", r)
				}
				return
			}
			if r.Status != 200 || !strings.Contains(r.Body, `"server":"tls"`) || r.UsualStat != 200 {
				t.Fatalf("HTTPS with the operator's CA: %+v", r)
			}
			if tc.secrets && !strings.Contains(r.Body, `"key_seen":"true"`) {
				t.Errorf("intercepted request: %s", r.Body)
			}
			want := 3
			if r.Requests == "absent" {
				want = 2
			}
			if got := len(hits.all()) - before; got != want {
				t.Errorf("server saw %d requests, want %d", got, want)
			}
			log.Wait(t, "the CONNECT", func(e audit.Egress) bool {
				return e.Host == "api.test" && e.Decision == egress.DecisionAllow && e.Intercepted == tc.secrets
			})
		})
	}
}
