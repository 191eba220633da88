package policy

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/skill"
)

// writeCA writes a fresh self-signed CA certificate as PEM into dir.
func writeCA(t *testing.T, dir, name string) (string, []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	p := filepath.Join(dir, name+".pem")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, b
}

// TestCAFile: ca_file is read and checked when the policy is parsed; a
// bad one is invalid naming FILE:LINE and the problem; --ca-file
// (AddCAFile) adds after it; a Spec carries the certificates only with a
// network grant.
func TestCAFile(t *testing.T) {
	dir := t.TempDir()
	good, goodPEM := writeCA(t, dir, "corp")
	other, otherPEM := writeCA(t, dir, "other")
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("hello\n"), 0o644)
	keyPEM := filepath.Join(dir, "key.pem")
	os.WriteFile(keyPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{1}}), 0o644)

	for name, tc := range map[string]struct{ file, want string }{
		"relative":     {"ca_file: corp.pem\n", "want an absolute path"},
		"missing":      {"ca_file: " + filepath.Join(dir, "absent.pem") + "\n", "no such file"},
		"not PEM":      {"ca_file: " + notPEM + "\n", "no PEM certificate"},
		"a key":        {"ca_file: " + keyPEM + "\n", "want only CERTIFICATE blocks"},
		"not a string": {"ca_file: [a]\n", "must be a string"},
		"a folder":     {"ca_file: " + dir + "\n", "not a regular file"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse("/etc/p.yaml", []byte(tc.file))
			if errdefs.KindOf(err) != errdefs.Invalid || !strings.Contains(err.Error(), "/etc/p.yaml:1") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want invalid at /etc/p.yaml:1 saying %q", err, tc.want)
			}
		})
	}

	pol, err := Parse("/etc/p.yaml", []byte("version: 1\nca_file: "+good+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if pol.CAFile != good || pol.CAFileLine != 2 || !bytes.Equal(pol.CACerts, goodPEM) {
		t.Fatalf("ca_file %q line %d, %d bytes", pol.CAFile, pol.CAFileLine, len(pol.CACerts))
	}
	if err := pol.AddCAFile(notPEM); errdefs.KindOf(err) != errdefs.Invalid || !strings.Contains(err.Error(), notPEM) {
		t.Errorf("AddCAFile of a bad file: %v", err)
	}
	if err := pol.AddCAFile(other); err != nil {
		t.Fatal(err)
	}
	if want := append(append([]byte{}, goodPEM...), otherPEM...); !bytes.Equal(pol.CACerts, want) {
		t.Errorf("CACerts after --ca-file: not ca_file then --ca-file")
	}

	s := testSkill(t, skill.TierProject, base+"permissions: {network: [\"api.example.com:443\"]}\n")
	d, err := Decide(s, Grants{Policy: pol, Net: []string{"api.example.com"}}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(d.Spec.CACerts, pol.CACerts) {
		t.Errorf("a network grant's Spec carries %d bytes of CA certificates, want the policy's %d", len(d.Spec.CACerts), len(pol.CACerts))
	}
	d, err = Decide(testSkill(t, skill.TierProject, base), Grants{Policy: pol}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if d.Spec.CACerts != nil {
		t.Errorf("a Spec without network carries CA certificates")
	}
}
