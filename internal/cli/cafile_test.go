package cli

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRunCAFile: run --ca-file makes a skill granted a loopback HTTPS host
// verify it (urllib's defaults, in the linux jail, through the egress
// proxy); without it the certificate is refused; a file that is not PEM
// certificates is invalid (exit 2) before anything runs.
func TestRunCAFile(t *testing.T) {
	h := newHarness(t)
	h.addPlain()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cli test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644)
	bad := filepath.Join(dir, "bad.pem")
	os.WriteFile(bad, []byte("not a certificate\n"), 0o644)

	o := h.run("run", "test/plain", "--backend", "process", "--ca-file", bad, "--json")
	if o.code != 2 || !strings.Contains(o.stdout+o.stderr, "no PEM certificate") {
		t.Errorf("bad --ca-file: exit %d: %s %s", o.code, o.stdout, o.stderr)
	}

	requireLinuxBackend(t)
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(2), DNSNames: []string{"api.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	srv.StartTLS()
	defer srv.Close()
	port := srv.Listener.Addr().(interface{ String() string }).String()
	port = port[strings.LastIndex(port, ":")+1:]
	u := fmt.Sprintf("https://api.test:%s/", port)
	p := params(t, map[string]any{"urls": []string{u}})
	args := []string{"run", "test/plain", "--backend", "linux", "--allow-net", "api.test:" + port, "--egress-resolve", "api.test=127.0.0.1", "--params", p, "--json"}
	for _, tc := range []struct {
		name  string
		extra []string
		want  any
	}{
		{"with --ca-file", []string{"--ca-file", caFile}, float64(200)},
		{"without", nil, "URLError"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := h.run(append(args, tc.extra...)...)
			res, _ := o.envelope(t)["result"].(map[string]any)
			urls, _ := res["urls"].(map[string]any)
			if o.code != 0 || urls[u] != tc.want {
				t.Errorf("exit %d, %s = %v, want %v: %s %s", o.code, u, urls[u], tc.want, o.stdout, o.stderr)
			}
		})
	}
}
