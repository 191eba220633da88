//go:build linux

package linux

import (
	"crypto/x509"
	"net/netip"

	"github.com/skillbox-dev/skillbox/internal/backend"
	"github.com/skillbox-dev/skillbox/internal/egress"
	"github.com/skillbox-dev/skillbox/internal/jail"
)

// testSeams are what a test changes of a driver's view of the host and
// the network; the zero value is the real host.
type testSeams struct {
	// missing marks layers or kernel hardenings missing, with the reason.
	missing map[string]string
	// resolver and roots are the egress proxies' resolver and trust for
	// intercepted upstreams.
	resolver egress.Resolver
	roots    *x509.CertPool
	// noStartAllowance leaves a call no time to start a sandbox beyond
	// its own timeout.
	noStartAllowance bool
}

// newTestDriver is New with seams.
func newTestDriver(opts Options, t testSeams) *Driver {
	s := seams{missing: t.missing, resolver: t.resolver, upstreamRoots: t.roots, startAllowance: backend.StartAllowance}
	if t.noStartAllowance {
		s.startAllowance = 0
	}
	return newDriver(opts, s)
}

// proxyPort is the port of jail.ProxyAddr, the one TCP port a jail with a
// network grant may connect to.
var proxyPort = int(netip.MustParseAddrPort(jail.ProxyAddr).Port())
