package egress

import (
	"container/list"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// ca is a proxy's ephemeral certificate authority. Its key lives only in the
// host process's memory; its certificate is name-constrained to the hosts
// that carry a bound secret, so even a stolen key could not vouch for any
// other name.
type ca struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	pem     []byte
	leafKey *ecdsa.PrivateKey

	// leaves caches the certificates minted, the most recently used
	// first, at most maxLeaves: a wildcard binding (*.example.com) lets a
	// skill name as many hosts as it likes.
	mu        sync.Mutex
	maxLeaves int
	leaves    map[string]*list.Element // of *cachedLeaf, in lru
	lru       list.List
}

// maxLeaves bounds a CA's cache of leaf certificates (about 3.5 KB each);
// a host beyond it is minted again when it next comes.
const maxLeaves = 1024

type cachedLeaf struct {
	host string
	cert *tls.Certificate
}

func newCA(secrets []Secret, validity time.Duration) (*ca, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          randSerial(),
		Subject:               pkix.Name{CommonName: "skillbox egress ephemeral CA", Organization: []string{"skillbox"}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		SubjectKeyId:          keyID(&key.PublicKey),
	}
	// Name constraints: exactly the bound hosts. "example.com" in
	// PermittedDNSDomains would also permit its subdomains, which is wider
	// than a name rule; it is the narrowest X.509 can say, and the proxy
	// only ever mints leaves for bound hosts anyway.
	dns := map[string]bool{}
	var ips []*net.IPNet
	for _, s := range secrets {
		for _, r := range s.Hosts {
			if a, err := netip.ParseAddr(r.Host); err == nil {
				bits := a.BitLen()
				ips = append(ips, &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(bits, bits)})
				continue
			}
			if d, ok := strings.CutPrefix(r.Host, "*."); ok {
				dns["."+d] = true
			} else {
				dns[r.Host] = true
			}
		}
	}
	for d := range dns {
		tmpl.PermittedDNSDomains = append(tmpl.PermittedDNSDomains, d)
	}
	if len(dns) == 0 {
		// Permit no names at all: a permitted subtree that cannot match.
		tmpl.ExcludedDNSDomains = []string{""}
	}
	if len(ips) > 0 {
		tmpl.PermittedIPRanges = ips
	} else {
		tmpl.ExcludedIPRanges = []*net.IPNet{
			{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)},
			{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)},
		}
	}
	tmpl.PermittedDNSDomainsCritical = true
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("egress: creating CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &ca{
		cert:      cert,
		key:       key,
		pem:       pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		leafKey:   leafKey,
		maxLeaves: maxLeaves,
		leaves:    map[string]*list.Element{},
	}, nil
}

// leaf returns a certificate for host, a name or an address literal:
// cached, or minted (outside the lock) and cached, evicting the least
// recently used beyond maxLeaves.
func (c *ca) leaf(host string) (*tls.Certificate, error) {
	c.mu.Lock()
	if e := c.leaves[host]; e != nil {
		c.lru.MoveToFront(e)
		c.mu.Unlock()
		return e.Value.(*cachedLeaf).cert, nil
	}
	c.mu.Unlock()
	l, err := c.mint(host)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.leaves[host]; e != nil { // minted meanwhile by another tunnel
		c.lru.MoveToFront(e)
		return e.Value.(*cachedLeaf).cert, nil
	}
	c.leaves[host] = c.lru.PushFront(&cachedLeaf{host: host, cert: l})
	for c.lru.Len() > c.maxLeaves {
		old := c.lru.Remove(c.lru.Back()).(*cachedLeaf)
		delete(c.leaves, old.host)
	}
	return l, nil
}

// mint makes a leaf certificate for host.
func (c *ca) mint(host string) (*tls.Certificate, error) {
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:   randSerial(),
		Subject:        pkix.Name{CommonName: host},
		NotBefore:      now.Add(-time.Minute),
		NotAfter:       c.cert.NotAfter,
		KeyUsage:       x509.KeyUsageDigitalSignature,
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		AuthorityKeyId: c.cert.SubjectKeyId,
	}
	if a, err := netip.ParseAddr(host); err == nil {
		tmpl.IPAddresses = []net.IP{a.AsSlice()}
	} else {
		tmpl.DNSNames = []string{host}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &c.leafKey.PublicKey, c.key)
	if err != nil {
		return nil, fmt.Errorf("egress: minting a certificate for %s: %w", host, err)
	}
	l := &tls.Certificate{Certificate: [][]byte{der, c.cert.Raw}, PrivateKey: c.leafKey}
	l.Leaf, _ = x509.ParseCertificate(der)
	return l, nil
}

func randSerial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n.Add(n, big.NewInt(1))
}

func keyID(pub *ecdsa.PublicKey) []byte {
	b, _ := x509.MarshalPKIXPublicKey(pub)
	sum := sha1.Sum(b)
	return sum[:]
}
