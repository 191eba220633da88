package jail

import (
	"net/netip"
	"slices"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/egress"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// EgressConfig is the egress proxy's Config for a sandbox Spec: Allow from
// spec.Network, Resolve from spec.Resolve, Secrets from spec.Secrets (with
// their values), CACerts from spec.CACerts, and audit as Config.Audit (nil
// discards events). Limits and CAFile are left at their defaults. The result is validated; a Spec
// the proxy cannot honour is errdefs.Invalid. It lives here, not in
// internal/egress, so that the proxy knows nothing of sandbox Specs.
//
// New places the CA bundle and Launch sets the audit sink of each jail's
// proxy; a caller without a jail (a test double) passes its own sink, such
// as egress.AuditFrom(ctx).
func EgressConfig(spec sandbox.Spec, audit func(egress.Event)) (egress.Config, error) {
	cfg := egress.Config{Audit: audit, CACerts: spec.CACerts}
	for _, hp := range spec.Network {
		r, err := ruleOf(hp)
		if err != nil {
			return egress.Config{}, errdefs.New(errdefs.Invalid, "egress: network %q: %v", hp.String(), err)
		}
		cfg.Allow = append(cfg.Allow, r)
	}
	if len(spec.Resolve) > 0 {
		cfg.Resolve = make(map[string][]netip.Addr, len(spec.Resolve))
		for name, addrs := range spec.Resolve {
			cfg.Resolve[name] = slices.Clone(addrs)
		}
	}
	for _, b := range spec.Secrets {
		s := egress.Secret{Name: b.Name, Placeholder: b.Placeholder, Value: b.Value}
		for _, hp := range b.Hosts {
			r, err := ruleOf(hp)
			if err != nil {
				return egress.Config{}, errdefs.New(errdefs.Invalid, "egress: secret %s: host %q: %v", b.Name, hp.String(), err)
			}
			s.Hosts = append(s.Hosts, r)
		}
		cfg.Secrets = append(cfg.Secrets, s)
	}
	if len(cfg.Secrets) > 0 && len(cfg.Allow) == 0 {
		return egress.Config{}, errdefs.New(errdefs.Invalid, "egress: secrets are bound but no network is granted")
	}
	if err := cfg.Validate(); err != nil {
		return egress.Config{}, err
	}
	return cfg, nil
}

// ruleOf converts a sandbox.HostPort (policy.ParseHostPort syntax) to its
// canonical Rule.
func ruleOf(hp sandbox.HostPort) (egress.Rule, error) {
	if hp.Port < 0 || hp.Port > 65535 {
		return egress.Rule{}, errdefs.New(errdefs.Invalid, "port %d is not in 1-65535", hp.Port)
	}
	return egress.ParseRule(hp.String())
}
