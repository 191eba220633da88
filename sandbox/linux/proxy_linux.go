package linux

import (
	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/egress"
	"github.com/skillbox-dev/skillbox/internal/jail"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// Network grants (docs/EGRESS.md). A jail with a network grant still has
// an empty network namespace; an egress proxy in this process serves a
// listener the init stage made on jail.ProxyAddr inside it (internal/jail).
//
// One proxy per jail: a zygote's proxy serves the zygote's calls one after
// the other (jail.Running.BeginCall at the start of each, so audit events
// go to the call whose connection caused them, and MaxConns/MaxBytes are
// per call); a cold jail's proxy serves its one call; a session's serves
// the session's calls (limits per call too). The proxy is closed when its
// jail is destroyed.

// egressConfig builds and validates the proxy configuration for spec, or
// returns nil when spec grants no network. Limits stay at egress's
// defaults (DefaultMaxConns, DefaultMaxBytes), applied per call; the jail
// places the CA file.
func (d *Driver) egressConfig(spec sandbox.Spec) (*egress.Config, error) {
	if len(spec.Network) == 0 && len(spec.Secrets) == 0 {
		return nil, nil
	}
	cfg, err := jail.EgressConfig(spec, nil)
	if err != nil {
		return nil, err
	}
	cfg.Resolver = d.seams.resolver
	cfg.UpstreamRootCAs = d.seams.upstreamRoots
	return &cfg, nil
}

// checkEgressHost refuses a network grant on a host whose jails would not
// have their own network namespace.
func checkEgressHost(pr *probeResult) error {
	if !pr.layer(LayerNetNS).Available {
		return errdefs.New(errdefs.Unsupported, "backend linux: a network grant needs the network namespace (%s)", pr.layer(LayerNetNS).Detail)
	}
	return nil
}
