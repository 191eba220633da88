// Package policy turns what a skill requests (its manifest) and what the
// operator grants (flags, later a policy file and trust store) into an
// effective grant and a sandbox.Spec — or a clear denial before any code runs.
//
// The rule is deny by default: the effective grant is the intersection of the
// request and the grant. A required request that is not granted is a
// *errdefs.DeniedError naming the permission and the exact flag that grants
// it; an optional request is simply not given; a grant the skill did not
// request is not given either (and noted in the warnings).
package policy

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/skill"
)

// Grants is what the operator allows for one call.
type Grants struct {
	// TrustRemoteCode lets a skill from an external root run.
	TrustRemoteCode bool
	// Net lists HOST or HOST:PORT grants (--allow-net); HOST alone means any port.
	Net []string
	// Env lists variable names the skill may receive (--allow-env).
	Env []string
	// Timeout and Memory, when set, override the manifest's limits and must
	// be enforced by the backend (--timeout, --memory).
	Timeout time.Duration
	Memory  int64
	// Mode is the worker mode; empty means single-use.
	Mode sandbox.Mode
	// BestEffort lets a backend run without isolation layers the host lacks.
	BestEffort bool
}

// Decision is the outcome of a successful policy check.
type Decision struct {
	// Spec is ready for a backend (Python left to the backend).
	Spec sandbox.Spec
	// Config holds the granted variables with their values; it becomes the
	// skill's BaseSkill.config, so credential(name) returns only these.
	Config map[string]string
	// EnvNames are the granted variable names, sorted (for audit).
	EnvNames []string
	// Warnings are notes for the caller.
	Warnings []string
}

// LookupEnv returns a variable's value from the operator's environment.
type LookupEnv func(name string) (string, bool)

// Decide checks s against g. lookup supplies values for granted variables.
func Decide(s *skill.Skill, g Grants, lookup LookupEnv) (*Decision, error) {
	m := s.Bundle.Manifest
	if s.Tier == skill.TierExternal && !g.TrustRemoteCode {
		return nil, &errdefs.DeniedError{
			Permission: "trust",
			Reason:     fmt.Sprintf("skill %s comes from an external root (%s) and is not trusted", s.ID, s.Dir),
			Grant:      "--trust-remote-code",
		}
	}
	d := &Decision{Config: map[string]string{}}

	env, warnings, err := decideEnv(s, g, lookup)
	if err != nil {
		return nil, err
	}
	d.Warnings = append(d.Warnings, warnings...)
	for name, v := range env {
		d.Config[name] = v
		d.EnvNames = append(d.EnvNames, name)
	}
	slices.Sort(d.EnvNames)

	network, warnings, err := decideNetwork(s, g)
	if err != nil {
		return nil, err
	}
	d.Warnings = append(d.Warnings, warnings...)

	limits := sandbox.Limits{
		Timeout: m.Permissions.Limits.Timeout,
		Memory:  m.Permissions.Limits.Memory,
		Pids:    m.Permissions.Limits.Pids,
		Output:  m.Permissions.Limits.Output,
	}
	require := []sandbox.Feature{sandbox.FeatureTimeout, sandbox.FeatureOutputCap, sandbox.FeatureEnvScrub}
	if g.Timeout < 0 || g.Memory < 0 {
		return nil, errdefs.New(errdefs.Invalid, "timeout and memory must not be negative")
	}
	if g.Timeout > 0 {
		limits.Timeout = g.Timeout
	}
	if g.Memory > 0 {
		limits.Memory = g.Memory
		require = append(require, sandbox.FeatureMemory)
	}
	if len(network) > 0 {
		require = append(require, sandbox.FeatureNetAllowlist)
	}
	mode := g.Mode
	if mode == "" {
		mode = sandbox.ModeSingleUse
	}
	d.Spec = sandbox.Spec{
		SkillID:      s.ID,
		Digest:       s.Digest,
		BundleDir:    s.Dir,
		Manifest:     m.JSON(),
		Env:          env,
		Network:      network,
		Limits:       limits,
		Mode:         mode,
		Require:      require,
		BestEffort:   g.BestEffort,
		Requirements: slices.Clone(m.Requirements),
	}
	return d, nil
}

// decideEnv intersects the variables the skill requests with the grant.
func decideEnv(s *skill.Skill, g Grants, lookup LookupEnv) (map[string]string, []string, error) {
	m := s.Bundle.Manifest
	required := map[string]bool{}
	for _, v := range m.EnvVars {
		required[v.Name] = v.Required
	}
	requested := m.Permissions.Env
	if !m.Permissions.EnvSet {
		requested = nil
		for _, v := range m.EnvVars {
			requested = append(requested, v.Name)
		}
	}
	granted := map[string]bool{}
	for _, name := range g.Env {
		if !validEnvName(name) {
			return nil, nil, errdefs.New(errdefs.Invalid, "--allow-env %q: not a valid variable name", name)
		}
		granted[name] = true
	}
	env := map[string]string{}
	var warnings []string
	for _, name := range requested {
		if !granted[name] {
			if required[name] {
				return nil, nil, &errdefs.DeniedError{
					Permission: "env " + name,
					Reason:     fmt.Sprintf("skill %s requires it and it is not granted", s.ID),
					Grant:      "--allow-env " + name,
				}
			}
			continue
		}
		v, ok := lookup(name)
		if !ok {
			if required[name] {
				return nil, nil, errdefs.New(errdefs.Invalid, "env %s is granted and required by skill %s, but it is not set", name, s.ID)
			}
			continue
		}
		env[name] = v
	}
	for _, name := range g.Env {
		if !slices.Contains(requested, name) {
			warnings = append(warnings, fmt.Sprintf("--allow-env %s: skill %s does not request it, so it is not given", name, s.ID))
		}
	}
	return env, warnings, nil
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// decideNetwork intersects requested hosts with --allow-net grants. Every
// requested host is required: a skill that declares a host it needs cannot
// run until the operator grants it.
func decideNetwork(s *skill.Skill, g Grants) ([]sandbox.HostPort, []string, error) {
	var grants []sandbox.HostPort
	for _, raw := range g.Net {
		hp, err := ParseHostPort(raw)
		if err != nil {
			return nil, nil, errdefs.New(errdefs.Invalid, "--allow-net %q: %v", raw, err)
		}
		grants = append(grants, hp)
	}
	var out []sandbox.HostPort
	used := make([]bool, len(grants))
	for _, raw := range s.Bundle.Manifest.Permissions.Network {
		req, err := ParseHostPort(raw)
		if err != nil {
			return nil, nil, errdefs.New(errdefs.Invalid, "manifest.yaml: permissions.network: %q: %v", raw, err)
		}
		ok := false
		for i, gr := range grants {
			if covers(gr, req) {
				ok, used[i] = true, true
				break
			}
		}
		if !ok {
			return nil, nil, &errdefs.DeniedError{
				Permission: "network " + req.String(),
				Reason:     fmt.Sprintf("skill %s requests it and it is not granted", s.ID),
				Grant:      "--allow-net " + req.String(),
			}
		}
		out = append(out, req)
	}
	var warnings []string
	for i, gr := range grants {
		if !used[i] {
			warnings = append(warnings, fmt.Sprintf("--allow-net %s: skill %s does not request it, so it is not given", gr, s.ID))
		}
	}
	return out, warnings, nil
}

// covers reports whether grant g allows request r. A grant without a port
// covers every port; "*.example.org" covers subdomains of example.org only.
func covers(g, r sandbox.HostPort) bool {
	if g.Port != 0 && g.Port != r.Port {
		return false
	}
	if g.Host == r.Host {
		return true
	}
	if suffix, ok := strings.CutPrefix(g.Host, "*."); ok {
		if strings.HasPrefix(r.Host, "*.") {
			return strings.HasSuffix(strings.TrimPrefix(r.Host, "*."), "."+suffix) || strings.TrimPrefix(r.Host, "*.") == suffix
		}
		return strings.HasSuffix(r.Host, "."+suffix)
	}
	return false
}

// ParseHostPort parses HOST, HOST:PORT, [IPv6]:PORT or *.DOMAIN[:PORT].
// Host names are lower-cased.
func ParseHostPort(s string) (sandbox.HostPort, error) {
	if s == "" {
		return sandbox.HostPort{}, fmt.Errorf("empty host")
	}
	host, portStr := s, ""
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, portStr = h, p
	} else if strings.Count(s, ":") > 1 && net.ParseIP(s) != nil {
		host = s // bare IPv6 address
	} else if strings.Contains(s, ":") {
		return sandbox.HostPort{}, fmt.Errorf("want HOST or HOST:PORT")
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if err := checkHost(host); err != nil {
		return sandbox.HostPort{}, err
	}
	hp := sandbox.HostPort{Host: host}
	if portStr != "" {
		p, err := strconv.Atoi(portStr)
		if err != nil || p < 1 || p > 65535 {
			return sandbox.HostPort{}, fmt.Errorf("port %q is not in 1-65535", portStr)
		}
		hp.Port = p
	}
	return hp, nil
}

func checkHost(h string) error {
	if net.ParseIP(h) != nil {
		return nil
	}
	name := strings.TrimPrefix(h, "*.")
	if name == "" || len(name) > 253 {
		return fmt.Errorf("bad host name %q", h)
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return fmt.Errorf("bad host name %q", h)
		}
		for _, r := range label {
			if !(r == '-' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
				return fmt.Errorf("bad host name %q", h)
			}
		}
	}
	return nil
}
