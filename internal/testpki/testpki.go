// Package testpki makes throwaway certificate authorities for tests that
// serve TLS on loopback and make a sandbox trust it (through --ca-file or
// a read path): a CA and one server certificate it issued, valid for an
// hour either side of now.
package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// PKI is a test CA and a server certificate it issued.
type PKI struct {
	// Pool holds the CA, for clients in the test itself.
	Pool *x509.CertPool
	// Leaf is the server certificate, for names, with its key.
	Leaf tls.Certificate
	// CAPEM is the CA certificate in PEM.
	CAPEM []byte
}

// New makes a CA and a server certificate for names (the first is also
// its common name).
func New(t testing.TB, names ...string) *PKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "skillbox test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	p := &PKI{
		Pool:  x509.NewCertPool(),
		Leaf:  tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		CAPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
	}
	p.Pool.AddCert(ca)
	return p
}

// WriteCA writes the CA certificate to dir/ca.pem, readable by anyone
// (a jail's uid, or a test's unprivileged skillbox), and returns its path.
func (p *PKI) WriteCA(t testing.TB, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(path, p.CAPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
