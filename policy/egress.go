package policy

import (
	"crypto/sha256"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/egress"
	"github.com/skillbox-dev/skillbox/internal/hostport"
	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/skill"
)

// Placeholders hands out the placeholder of each bound secret: one per
// skill, bundle digest, secret name and value, made by egress.NewPlaceholder
// the first time and returned again after, so that the same grant gives the
// same Spec. Values are kept only as SHA-256 hashes. The zero value is ready
// to use; it is safe for concurrent use.
type Placeholders struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]string
}

// For returns the placeholder for the secret name with value, as granted to
// the skill id at digest. A nil *Placeholders returns a fresh one each time.
func (p *Placeholders) For(id, digest, name, value string) string {
	if p == nil {
		return egress.NewPlaceholder()
	}
	h := sha256.New()
	for _, part := range []string{id, digest, name, value} {
		fmt.Fprintf(h, "%d:%s;", len(part), part)
	}
	var key [sha256.Size]byte
	h.Sum(key[:0])
	p.mu.Lock()
	defer p.mu.Unlock()
	if ph, ok := p.m[key]; ok {
		return ph
	}
	if p.m == nil {
		p.m = map[[sha256.Size]byte]string{}
	}
	ph := egress.NewPlaceholder()
	p.m[key] = ph
	return ph
}

// ParseResolve parses an --egress-resolve value, HOST=IP: a host name (not
// a pattern, an address or a port; lower-cased, a trailing dot dropped,
// internationalised names in punycode) and one IPv4 or IPv6 address
// (without brackets, port or zone; not unspecified or multicast; an
// IPv4-mapped IPv6 address is read as IPv4).
func ParseResolve(s string) (string, netip.Addr, error) {
	host, ip, ok := strings.Cut(s, "=")
	if !ok || host == "" || ip == "" {
		return "", netip.Addr{}, fmt.Errorf("want HOST=IP, such as api.example.com=127.0.0.1")
	}
	if strings.ContainsAny(host, ":[]/@ ") || strings.HasPrefix(host, "*") {
		return "", netip.Addr{}, fmt.Errorf("%q: want a plain host name (no port, pattern or address)", host)
	}
	r, err := hostport.Parse(host)
	if err != nil {
		return "", netip.Addr{}, err
	}
	if r.IsAddr() || r.Port != 0 || r.IsPattern() {
		return "", netip.Addr{}, fmt.Errorf("%q: want a plain host name (no port, pattern or address)", host)
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return "", netip.Addr{}, fmt.Errorf("%q is not an IP address", ip)
	}
	a = a.Unmap()
	switch {
	case a.Zone() != "":
		return "", netip.Addr{}, fmt.Errorf("%q: zones are not allowed", ip)
	case a.IsUnspecified(), a.IsMulticast():
		return "", netip.Addr{}, fmt.Errorf("%q: an unspecified or multicast address cannot be dialled", ip)
	}
	return r.Host, a, nil
}

// decideResolve keeps the HOST=IP mappings whose host the effective network
// grant covers. g.Resolve holds the flags (the first flagCount entries) and
// the skill's standing grants, which get a warning when unused; the
// policy's global egress_resolve applies silently to every skill.
func decideResolve(s *skill.Skill, g Grants, flagCount int, network []sandbox.HostPort) (map[string][]netip.Addr, []string, error) {
	out := map[string][]netip.Addr{}
	var warnings []string
	add := func(raw, from string, warn bool) error {
		host, addr, err := ParseResolve(raw)
		if err != nil {
			return errdefs.New(errdefs.Invalid, "%s %q: %v", from, raw, err)
		}
		if !nameCovered(network, host) {
			if warn {
				warnings = append(warnings, fmt.Sprintf("%s %s: skill %s is not granted network access to %s, so it is not given", from, raw, s.ID, host))
			}
			return nil
		}
		if !slices.Contains(out[host], addr) {
			out[host] = append(out[host], addr)
		}
		return nil
	}
	for i, raw := range g.Resolve {
		from := "--egress-resolve"
		if i >= flagCount {
			from = fmt.Sprintf("skills[%q].egress_resolve", s.ID)
		}
		if err := add(raw, from, true); err != nil {
			return nil, nil, err
		}
	}
	if g.Policy != nil {
		for _, raw := range g.Policy.Resolve {
			if err := add(raw, "egress_resolve", false); err != nil {
				return nil, nil, err
			}
		}
	}
	if len(out) == 0 {
		return nil, warnings, nil
	}
	return out, warnings, nil
}

// nameCovered reports whether some entry of network allows the host name
// on some port.
func nameCovered(network []sandbox.HostPort, host string) bool {
	for _, n := range network {
		if covers(sandbox.HostPort{Host: n.Host}, sandbox.HostPort{Host: host}) {
			return true
		}
	}
	return false
}

// bindSecrets turns each granted variable that the policy binds to hosts
// into a SecretBinding, and replaces its value in env with the placeholder.
// Each bound host must be reachable under the effective network grant.
func bindSecrets(s *skill.Skill, g Grants, env map[string]string, network []sandbox.HostPort) ([]sandbox.SecretBinding, error) {
	if g.Policy == nil || len(g.Policy.Secrets) == 0 {
		return nil, nil
	}
	names := make([]string, 0, len(env))
	for name := range env {
		if _, ok := g.Policy.Secrets[name]; ok {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	var out []sandbox.SecretBinding
	for _, name := range names {
		pb := g.Policy.Secrets[name]
		at := g.Policy.At(pb.Line)
		value := env[name]
		if value == "" {
			continue // nothing to keep out of the sandbox
		}
		for _, r := range value {
			if r < 0x20 || r == 0x7f {
				return nil, errdefs.New(errdefs.Invalid, "secret %s (bound to hosts at %s): its value contains a control character, so it cannot be sent in HTTP", name, at)
			}
		}
		b := sandbox.SecretBinding{Name: name, Value: value}
		for _, raw := range pb.Hosts {
			hp, err := ParseHostPort(raw)
			if err == nil {
				err = proxyCanParse(hp)
			}
			if err != nil {
				return nil, errdefs.New(errdefs.Invalid, "secrets.%s.hosts %q at %s: %v", name, raw, at, err)
			}
			if !hostCovered(network, hp) {
				return nil, &errdefs.DeniedError{
					Permission: fmt.Sprintf("network %s for secret %s", hp, name),
					Reason: fmt.Sprintf("the policy binds secret %s to %s (%s), but skill %s is not granted network access to it (granted: %s)",
						name, hp, at, s.ID, hostList(network)),
					Grant: fmt.Sprintf("--allow-net %s when the skill requests it in permissions.network; otherwise remove %s from secrets.%s.hosts at %s",
						hp, raw, name, at),
				}
			}
			b.Hosts = append(b.Hosts, hp)
		}
		b.Placeholder = g.Placeholders.For(s.ID, s.Digest, name, value)
		env[name] = b.Placeholder
		out = append(out, b)
	}
	return out, nil
}

// hostCovered reports whether network lets requests reach h: an entry whose
// host covers h's and whose port is compatible (either is "any", or equal).
func hostCovered(network []sandbox.HostPort, h sandbox.HostPort) bool {
	for _, n := range network {
		if n.Port != 0 && h.Port != 0 && n.Port != h.Port {
			continue
		}
		if covers(sandbox.HostPort{Host: n.Host}, sandbox.HostPort{Host: h.Host}) {
			return true
		}
	}
	return false
}

func hostList(network []sandbox.HostPort) string {
	if len(network) == 0 {
		return "no network"
	}
	parts := make([]string, len(network))
	for i, n := range network {
		parts[i] = n.String()
	}
	return strings.Join(parts, ", ")
}

// proxyCanParse checks that the egress proxy reads hp as written, so that a
// grant accepted here cannot fail (or mean something else) in the backend.
// Both read hosts with internal/hostport, so this holds by construction;
// the check stays as a guard against the two drifting apart again.
func proxyCanParse(hp sandbox.HostPort) error {
	r, err := egress.ParseRule(hp.String())
	if err != nil {
		return err
	}
	if r.Host != hp.Host || r.Port != hp.Port {
		return fmt.Errorf("not in canonical form (want %q)", r.String())
	}
	return nil
}
