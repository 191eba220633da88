package egress

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCAPEM returns a fresh self-signed CA certificate in PEM.
func testCAPEM(t *testing.T, name string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestParseCAs(t *testing.T) {
	a, b := testCAPEM(t, "A"), testCAPEM(t, "B")
	for name, tc := range map[string]struct {
		data []byte
		n    int
		err  string
	}{
		"one":               {data: a, n: 1},
		"two with comments": {data: append(append([]byte("# operator CAs\n"), a...), append([]byte("\n# B\n"), b...)...), n: 2},
		"empty":             {data: nil, err: "no PEM certificate"},
		"text":              {data: []byte("not a certificate\n"), err: "no PEM certificate"},
		"key block":         {data: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2}}), err: `"PRIVATE KEY"`},
		"garbage cert":      {data: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("junk")}), err: "certificate 1"},
		"broken block":      {data: append(append([]byte{}, a...), []byte("-----BEGIN CERTIFICATE-----\n!!!\n")...), err: "does not decode"},
		"DER, not PEM":      {data: func() []byte { blk, _ := pem.Decode(a); return blk.Bytes }(), err: "no PEM certificate"},
	} {
		t.Run(name, func(t *testing.T) {
			certs, err := ParseCAs("ca.pem", tc.data)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.HasPrefix(err.Error(), "ca.pem: ") {
					t.Fatalf("got %v, want an error naming the file and %q", err, tc.err)
				}
				return
			}
			if err != nil || len(certs) != tc.n {
				t.Fatalf("got %d certificates, %v; want %d", len(certs), err, tc.n)
			}
		})
	}
}

// TestTrustBundle: the bundle is the host's bundle, then the operator's
// certificates, then (CABundle) the interception CA, in that order; a host
// without a bundle gets the rest and a note.
func TestTrustBundle(t *testing.T) {
	host, op := testCAPEM(t, "host"), testCAPEM(t, "operator")
	dir := t.TempDir()
	hostFile := filepath.Join(dir, "host.pem")
	// No final newline: JoinPEM must add one between the parts.
	if err := os.WriteFile(hostFile, bytes.TrimRight(host, "\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSL_CERT_FILE", hostFile)
	p, err := New(Config{CACerts: op, Secrets: []Secret{{Name: "K", Placeholder: NewPlaceholder(), Value: "v-0001", Hosts: rules(t, "a.test")}}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	b, err := p.CABundle()
	if err != nil {
		t.Fatal(err)
	}
	if want := JoinPEM(host, op, p.CACertPEM()); !bytes.Equal(b, want) {
		t.Fatalf("bundle:\n%s\nwant host, operator, interception CA:\n%s", b, want)
	}
	certs, err := ParseCAs("bundle", b)
	if err != nil || len(certs) != 3 || certs[0].Subject.CommonName != "host" || certs[1].Subject.CommonName != "operator" {
		t.Fatalf("bundle parses to %d certificates (%v)", len(certs), err)
	}

	// Without interception: no proxy CA.
	base, note := Config{CACerts: op}.TrustBundle()
	if note != "" || !bytes.Equal(base, JoinPEM(host, op)) {
		t.Errorf("trust bundle %q, note %q", base, note)
	}

	// A host without a bundle: only the operator's part, and a note.
	// SSL_CERT_FILE names a file that is not there; the usual paths are
	// read only when they hold a certificate, which this test cannot
	// control, so it checks the note only when none of them does.
	t.Setenv("SSL_CERT_FILE", filepath.Join(dir, "missing.pem"))
	if _, _, err := SystemBundle(); err == nil {
		t.Log("this host has a system bundle at a usual path: the no-bundle case is not checked here")
		return
	}
	base, note = Config{CACerts: op}.TrustBundle()
	if !bytes.Equal(base, op) || !strings.Contains(note, "no CA bundle") {
		t.Errorf("without a host bundle: %q, note %q", base, note)
	}
}

func TestValidateCACerts(t *testing.T) {
	c := Config{CACerts: []byte("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n")}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "CACerts") {
		t.Fatalf("bad CACerts: %v", err)
	}
	c.CACerts = testCAPEM(t, "ok")
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestInterceptionTrustsCACerts: the proxy verifies an intercepted
// upstream with Config.CACerts too (added to UpstreamRootCAs, here an empty
// pool standing for a host whose roots lack the server's CA), and still
// refuses it without them.
func TestInterceptionTrustsCACerts(t *testing.T) {
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "private") }))
	defer ts.Close()
	// httptest's certificate is its own issuer: Go accepts it as a root.
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})
	for _, tc := range []struct {
		name string
		ca   []byte
		want int
	}{{"with CACerts", caPEM, 200}, {"without", nil, http.StatusBadGateway}} {
		t.Run(tc.name, func(t *testing.T) {
			ph := NewPlaceholder()
			h := start(t, Config{
				Allow:           rules(t, "example.com"),
				Resolve:         map[string][]netip.Addr{"example.com": {loop4}},
				Secrets:         []Secret{{Name: "K", Placeholder: ph, Value: "v-0001", Hosts: rules(t, "example.com")}},
				UpstreamRootCAs: x509.NewCertPool(),
				CACerts:         tc.ca,
			})
			code, body, _ := get(t, h.client(h.caPool(t)), fmt.Sprintf("https://example.com:%d/?k=%s", portOf(t, ts), ph))
			if code != tc.want || tc.want == 200 && body != "private" {
				t.Fatalf("got %d %q, want %d", code, body, tc.want)
			}
		})
	}
}
