package egress

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// systemBundles are where Linux distributions keep their CA bundle: the
// files crypto/x509 reads on Linux, in its order.
var systemBundles = []string{
	"/etc/ssl/certs/ca-certificates.crt",                // Debian, Ubuntu, Gentoo, Arch
	"/etc/pki/tls/certs/ca-bundle.crt",                  // Fedora, RHEL 6
	"/etc/ssl/ca-bundle.pem",                            // openSUSE
	"/etc/pki/tls/cacert.pem",                           // OpenELEC
	"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", // CentOS, RHEL 7
	"/etc/ssl/cert.pem",                                 // Alpine
}

// SystemBundle returns the host's CA bundle and the file it was read
// from, found as crypto/x509 finds it on Linux: $SSL_CERT_FILE first,
// then the distributions' usual paths. It fails when none of them holds
// a certificate.
func SystemBundle() (bundle []byte, path string, err error) {
	paths := systemBundles
	if f := os.Getenv("SSL_CERT_FILE"); f != "" {
		paths = append([]string{f}, paths...)
	}
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte("-----BEGIN CERTIFICATE-----")) {
			return b, p, nil
		}
	}
	return nil, "", errors.New("egress: no system CA bundle found (looked for $SSL_CERT_FILE and the usual Linux paths)")
}

// ParseCAs parses PEM data that must hold at least one certificate and
// nothing else: every block a CERTIFICATE that parses and, text outside
// the blocks aside (comments, as in distribution bundles), no stray
// bytes that look like a broken block. name says where data came from,
// for the error.
func ParseCAs(name string, data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%s: PEM block %d is a %q, want only CERTIFICATE blocks", name, len(certs)+1, b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: certificate %d: %v", name, len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if bytes.Contains(rest, []byte("-----BEGIN")) {
		return nil, fmt.Errorf("%s: a PEM block after certificate %d does not decode", name, len(certs))
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s: no PEM certificate in it (want one or more -----BEGIN CERTIFICATE----- blocks)", name)
	}
	return certs, nil
}

// TrustBundle is what a sandbox with a network grant trusts, without the
// proxy's own CA: the host's bundle (SystemBundle) followed by
// Config.CACerts. It is built once per sandbox (a jail plans it once);
// Proxy.CABundle adds the per-proxy interception CA. note is non-empty
// when the host has no bundle: the sandbox then trusts only the rest.
func (c Config) TrustBundle() (bundle []byte, note string) {
	sys, _, err := SystemBundle()
	if err != nil {
		note = "this host has no CA bundle (" + err.Error() + "): the sandbox trusts only the operator's ca_file and the interception CA"
	}
	return JoinPEM(sys, c.CACerts), note
}

// JoinPEM concatenates PEM files in order, each ending in a newline.
func JoinPEM(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		if len(p) == 0 {
			continue
		}
		out = append(out, p...)
		if out[len(out)-1] != '\n' {
			out = append(out, '\n')
		}
	}
	return out
}
