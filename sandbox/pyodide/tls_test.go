//go:build linux

package pyodide

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/sandbox/sandboxtest"
)

// TestOperatorCA (issue 15 part 4): a skill granted a loopback HTTPS host
// fetches it through Deno (which trusts the jail's CA bundle, --cert) when
// the operator's CA file (Spec.CACerts) lists the server's certificate,
// and gets a certificate error when it does not.
func TestOperatorCA(t *testing.T) {
	d := jailedDriver(t)
	// A CA and a leaf it issued: webpki (Deno's verifier) refuses a CA
	// certificate as the server's own, such as httptest's.
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pyodide test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(2), DNSNames: []string{"example.com"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "tls-body") }))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leaf}, PrivateKey: key}}}
	srv.StartTLS()
	defer srv.Close()
	_, portS, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ := strconv.Atoi(portS)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	url := fmt.Sprintf(`{"url": "https://example.com:%d/"}`, port)
	for _, tc := range []struct {
		name string
		ca   []byte
		ok   bool
	}{{"operator CA", ca, true}, {"no operator CA", nil, false}} {
		t.Run(tc.name, func(t *testing.T) {
			spec := sandboxtest.SpecFor(netBundle(t), sandboxtest.Options{})
			spec.Network = []sandbox.HostPort{{Host: "example.com", Port: port}}
			spec.Resolve = map[string][]netip.Addr{"example.com": {netip.MustParseAddr("127.0.0.1")}}
			spec.CACerts = tc.ca
			sb := sandboxtest.Open(t, d, spec)
			res, err := sb.Call(context.Background(), sandbox.Request{Params: []byte(url)})
			var got netReply
			sandboxtest.MustResult(t, res, err, &got)
			if tc.ok && got.Body != "tls-body" {
				t.Errorf("with the operator's CA: %+v", got)
			}
			if !tc.ok && (got.Body != "" || got.Error == "") {
				t.Errorf("without the operator's CA: %+v, want a certificate error", got)
			}
			t.Logf("%s: %+v", tc.name, got)
		})
	}
}
