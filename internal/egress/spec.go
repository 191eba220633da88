package egress

import (
	"context"
	"net/netip"
	"slices"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// FromSpec is the proxy Config for spec: Allow from spec.Network, Resolve
// from spec.Resolve, Secrets from spec.Secrets (with their values), and
// audit as Config.Audit (nil discards events). Limits and CAFile are left
// at their defaults for the backend to set. The result is validated; a
// Spec the proxy cannot honour is errdefs.Invalid.
//
// A backend calls it once per proxy, usually with the audit sink of the
// call: egress.FromSpec(spec, egress.AuditFrom(ctx)).
func FromSpec(spec sandbox.Spec, audit func(Event)) (Config, error) {
	cfg := Config{Audit: audit}
	for _, hp := range spec.Network {
		r, err := ruleOf(hp)
		if err != nil {
			return Config{}, errdefs.New(errdefs.Invalid, "egress: network %q: %v", hp.String(), err)
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
		s := Secret{Name: b.Name, Placeholder: b.Placeholder, Value: b.Value}
		for _, hp := range b.Hosts {
			r, err := ruleOf(hp)
			if err != nil {
				return Config{}, errdefs.New(errdefs.Invalid, "egress: secret %s: host %q: %v", b.Name, hp.String(), err)
			}
			s.Hosts = append(s.Hosts, r)
		}
		cfg.Secrets = append(cfg.Secrets, s)
	}
	if len(cfg.Secrets) > 0 && len(cfg.Allow) == 0 {
		return Config{}, errdefs.New(errdefs.Invalid, "egress: secrets are bound but no network is granted")
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// ruleOf converts a sandbox.HostPort (policy.ParseHostPort syntax) to its
// canonical Rule.
func ruleOf(hp sandbox.HostPort) (Rule, error) {
	if hp.Port < 0 || hp.Port > 65535 {
		return Rule{}, errdefs.New(errdefs.Invalid, "port %d is not in 1-65535", hp.Port)
	}
	return ParseRule(hp.String())
}

// auditKey is the context key of the audit sink.
type auditKey struct{}

// WithAudit returns ctx carrying audit, the sink for the egress events of
// the call ctx belongs to. The Runtime sets it on the context it passes to
// sandbox.Sandbox.Call; the sink is safe for concurrent use and may be
// called after Call has returned (allowed exchanges are reported when they
// end).
func WithAudit(ctx context.Context, audit func(Event)) context.Context {
	return context.WithValue(ctx, auditKey{}, audit)
}

// AuditFrom returns the sink WithAudit put in ctx, or a function that
// discards events. It never returns nil.
func AuditFrom(ctx context.Context) func(Event) {
	if f, ok := ctx.Value(auditKey{}).(func(Event)); ok && f != nil {
		return f
	}
	return func(Event) {}
}
