// Package policy turns what a skill requests (its manifest) and what the
// operator grants (flags, a policy file, the trust store) into an effective
// grant and a sandbox.Spec — or a clear denial before any code runs.
//
// The rule is deny by default: the effective grant is the intersection of the
// request and the grant. A requested host that is not granted is a
// *errdefs.DeniedError naming the permission and the exact flag (or policy
// line) that grants it; a variable of env_vars that is not granted is not
// given (with a warning naming the flag when it is required, or a denial
// under the policy's "missing_env: refuse"); a grant the skill did not
// request is not given either (and noted in the warnings). Host paths are
// the one grant a manifest cannot request: they come only from the operator
// (--allow-read, policy "read").
//
// A skill whose manifest has no permissions block (an unmodified Skillware
// manifest) cannot request network access or variables beyond its env_vars.
// It gets the operator's grants made for it alone as they are: its entry in
// the policy file always, and the call's own grants when
// Grants.GrantUndeclared says they are meant for this one skill (skillbox
// run). The Decision marks such a grant (OperatorOnly).
package policy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/hostport"
	"github.com/skillbox-dev/skillbox/internal/secrets"
	"github.com/skillbox-dev/skillbox/internal/shellquote"
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
	// LockedTimeout and LockedMemory are the limits a lockfile pinned for
	// the skill (a locked call: run and serve --locked). Where Timeout or
	// Memory is unset they take its place, as if given, so that a skill
	// locked at 5s runs with 5s rather than its manifest's 30s; except
	// where the call gets the same value without them (an explicit memory
	// limit needs a backend that enforces it), and where a policy ceiling
	// or floor refuses them (the ceiling wins; the lock check then reports
	// the drift, if any).
	LockedTimeout time.Duration
	LockedMemory  int64
	// Read lists absolute host paths the skill may read (--allow-read).
	Read []string
	// Resolve lists HOST=IP mappings (--egress-resolve): the egress proxy
	// sends HOST to IP without a lookup, and the mapping grants IP even in
	// ranges it otherwise refuses. HOST must still be a granted destination.
	Resolve []string
	// Placeholders hands out the placeholders of bound secrets; nil makes a
	// fresh one every time. The Runtime keeps one, so that deciding the same
	// grant twice yields the same Spec (and reuses its cached sandbox).
	Placeholders *Placeholders
	// Mode is the worker mode; empty means single-use.
	Mode sandbox.Mode
	// BestEffort lets a backend run without isolation layers the host lacks.
	BestEffort bool
	// GrantUndeclared says that Net, Env and Read are the operator's
	// grants to this one skill (skillbox run SKILL --allow-net ...): a
	// skill whose manifest has no permissions block
	// (skill.Permissions.HasBlock; an unmodified Skillware manifest, which
	// cannot request anything) gets them as they are, and the Decision
	// says so (OperatorOnly). A manifest with a block still gets only what
	// it requests of them. Leave it false where the grants are meant for
	// every skill (serve's flags): a skill without a block then gets
	// network access and variables beyond its env_vars only from its own
	// entry in the policy file, which applies this way whatever this says.
	GrantUndeclared bool
	// Warm is the operator's opt-in for this one skill (serve --warm ID):
	// the backend may import the skill once in a process that serves
	// several of its calls, so calls of this skill may share state that
	// its import created. The policy file's "warm: true" for the skill
	// does the same. It applies to single-use calls only (a session shares
	// everything anyway).
	Warm bool
	// BuildImages lets a call of a container skill whose image is built
	// from its Dockerfile build it on first use (run/serve
	// --build-images; the policy file's build_images does the same).
	BuildImages bool
	// Policy adds the standing grants and ceilings of a policy file; nil is
	// the empty policy.
	Policy *Policy
	// Trust vouches for external skills (trust store, publisher
	// signatures); nil trusts nothing.
	Trust Trust
}

// Trust decides whether an external skill may run without
// --trust-remote-code.
type Trust interface {
	// Trusted returns why s is trusted ("trust store entry of ...",
	// "signed by ..."), an error matching ErrNotTrusted when nothing vouches
	// for it, a *errdefs.DeniedError when a pin no longer matches (a changed
	// bundle), or any other error when the trust data cannot be read — which
	// denies too: a broken trust store never fails open.
	Trusted(s *skill.Skill) (string, error)
}

// TrustSnapshot is a Trust whose data can change while a Runtime uses it
// (the CLI's trust store, read again when its file changes). Decide takes
// one snapshot per decision, so that the gate and the image and environment
// pins it then reads come from the same data.
type TrustSnapshot interface {
	Trust
	// Snapshot returns the trust as it is now.
	Snapshot() Trust
}

// ImagePins is a Trust that also pins the image of a container skill it
// trusts (the trust store: trust.Entry.Image). Decide puts the digest in
// Spec.Container.Digest, and the backend runs that image only: a tag that
// moved since is denied like an edited bundle.
type ImagePins interface {
	// TrustedImage returns the image digest pinned for s, if any.
	TrustedImage(s *skill.Skill) (digest string, ok bool)
}

// EnvironmentPins is a Trust that also records the resolved set of the
// environment of a skill it trusts (the trust store: trust.Entry.
// Environment). Decide puts the set in Decision.EnvironmentPin, and the
// Runtime denies a call whose environment resolves to another set, like an
// edited bundle.
type EnvironmentPins interface {
	// TrustedEnvironment returns the resolved set recorded for s
	// ("name==version sha256=HEX", sorted), if any.
	TrustedEnvironment(s *skill.Skill) (set []string, ok bool)
}

// ErrNotTrusted is returned by a Trust that has nothing to say about a skill.
var ErrNotTrusted = errors.New("not trusted")

// Decision is the outcome of a successful policy check.
type Decision struct {
	// Spec is ready for a backend (Python left to the backend).
	Spec sandbox.Spec
	// Config holds the granted variables with their values; it becomes the
	// skill's BaseSkill.config, so credential(name) returns only these.
	Config map[string]string
	// EnvNames are the granted variable names, sorted (for audit).
	EnvNames []string
	// ReadPaths are the granted host paths (also in Spec.ReadPaths).
	ReadPaths []string
	// SecretNames are the granted variables bound to hosts by the policy
	// file, sorted (also in Spec.Secrets; Config and Spec.Env hold their
	// placeholders).
	SecretNames []string
	// TrustedBy says why an external skill was allowed to run ("" for
	// bundled and project skills).
	TrustedBy string
	// OperatorOnly says the manifest has no permissions block and the
	// grant holds network destinations or variables (beyond its env_vars)
	// that the operator gave this skill as they are, not intersected with
	// a request (Grants.GrantUndeclared, the skill's policy entry).
	OperatorOnly bool
	// Warnings are notes for the caller.
	Warnings []string
	// EnvironmentPin is the resolved set of the skill's environment that
	// the trust store recorded when it trusted it (EnvironmentPins), when
	// the store is what trusts the skill: its environment must resolve to
	// exactly this set. Nil: no pin.
	EnvironmentPin []string
}

// LookupEnv returns a variable's value from the operator's environment.
type LookupEnv func(name string) (string, bool)

// Decide checks s against g. lookup supplies values for granted variables.
func Decide(s *skill.Skill, g Grants, lookup LookupEnv) (*Decision, error) {
	m := s.Bundle.Manifest
	d := &Decision{Config: map[string]string{}}
	if s.Tier == skill.TierExternal {
		if t, ok := g.Trust.(TrustSnapshot); ok {
			g.Trust = t.Snapshot()
		}
		how, err := trusted(s, g)
		if err != nil {
			return nil, err
		}
		d.TrustedBy = how
	}
	// Standing grants from the policy file add to the flags.
	pg := g.Policy.ForSkill(s.ID)
	flagEnv, flagNet := len(g.Env), len(g.Net)
	g.Env = append(slices.Clone(g.Env), pg.Env...)
	g.Net = append(slices.Clone(g.Net), pg.Net...)
	g.Read = append(slices.Clone(g.Read), pg.Read...)
	flagResolve := len(g.Resolve)
	g.Resolve = append(slices.Clone(g.Resolve), pg.Resolve...)
	// A manifest without a permissions block requests nothing: the grants
	// made for this skill alone (from index direct on) are given as they
	// are. With a block, none are (direct = all of them).
	directEnv, directNet := len(g.Env), len(g.Net)
	if !m.Permissions.HasBlock() {
		directEnv, directNet = flagEnv, flagNet
		if g.GrantUndeclared {
			directEnv, directNet = 0, 0
		}
	}

	env, operatorEnv, warnings, err := decideEnv(s, g, directEnv, lookup)
	if err != nil {
		return nil, err
	}
	d.Warnings = append(d.Warnings, warnings...)

	network, operatorNet, warnings, err := decideNetwork(s, g, directNet)
	if err != nil {
		return nil, err
	}
	d.Warnings = append(d.Warnings, warnings...)
	d.OperatorOnly = operatorEnv || operatorNet

	resolve, warnings, err := decideResolve(s, g, flagResolve, network)
	if err != nil {
		return nil, err
	}
	d.Warnings = append(d.Warnings, warnings...)

	// Bound secrets: the skill sees a placeholder; the value stays in
	// Spec.Secrets for the backend's egress proxy.
	secrets, err := bindSecrets(s, g, env, network)
	if err != nil {
		return nil, err
	}
	for name, v := range env {
		d.Config[name] = v
		d.EnvNames = append(d.EnvNames, name)
	}
	slices.Sort(d.EnvNames)
	for _, b := range secrets {
		d.SecretNames = append(d.SecretNames, b.Name)
	}

	readPaths, err := decideRead(g.Read)
	if err != nil {
		return nil, err
	}
	d.ReadPaths = readPaths

	limits, require, warnings, err := decideLimits(s, g, pg)
	if err != nil {
		return nil, err
	}
	if lg, ok := withLockedLimits(g, limits); ok {
		if l, r, w, err := decideLimits(s, lg, pg); err == nil {
			limits, require, warnings = l, r, w
		}
	}
	d.Warnings = append(d.Warnings, warnings...)
	if len(network) > 0 {
		require = append(require, sandbox.FeatureNetAllowlist)
	}
	if len(secrets) > 0 {
		require = append(require, sandbox.FeatureSecretBinding)
	}
	mode := g.Mode
	if mode == "" {
		mode = sandbox.ModeSingleUse
	}
	var trustedEnvs []string
	if g.Policy != nil {
		trustedEnvs = slices.Clone(g.Policy.TrustedEnvironments)
	}
	d.Spec = sandbox.Spec{
		SkillID:      s.ID,
		SkillRef:     s.Ref(),
		Digest:       s.Digest,
		BundleDir:    s.Dir,
		Manifest:     m.JSON(),
		Env:          env,
		Network:      network,
		Resolve:      resolve,
		Secrets:      secrets,
		ReadPaths:    readPaths,
		Limits:       limits,
		Mode:         mode,
		Require:      require,
		BestEffort:   g.BestEffort,
		Requirements: slices.Clone(m.Requirements),
		CACerts:      caCerts(g.Policy, network),
		// Only an explicit opt-in for this skill, and only where calls
		// would otherwise each get a fresh import.
		Warm:                (g.Warm || pg.Warm) && mode == sandbox.ModeSingleUse,
		TrustedEnvironments: trustedEnvs,
	}
	if pins, ok := g.Trust.(EnvironmentPins); ok && s.Tier == skill.TierExternal && !g.TrustRemoteCode && len(m.Requirements) > 0 {
		if set, ok := pins.TrustedEnvironment(s); ok {
			d.EnvironmentPin = slices.Clone(set)
		}
	}
	if c := m.Container; m.Containerized() && c != nil {
		d.Spec.Container = &sandbox.Container{Image: c.Image, Dockerfile: c.Dockerfile, Python: c.Python,
			Build: c.Dockerfile != "" && (g.BuildImages || g.Policy.BuildsImages())}
		if d.Spec.Container.Build {
			if d.Spec.Container.BuildNetwork, err = g.Policy.BuildNetwork(s.ID); err != nil {
				return nil, err
			}
		}
		// The image the trust store pinned, when the store is what trusts
		// the skill (not --trust-remote-code).
		if pins, ok := g.Trust.(ImagePins); ok && s.Tier == skill.TierExternal && !g.TrustRemoteCode {
			if digest, ok := pins.TrustedImage(s); ok {
				d.Spec.Container.Digest = digest
			}
		}
	}
	return d, nil
}

// decideEnv intersects the variables the skill requests with the grant.
// The grants from index direct of g.Env on are given even unrequested
// (a manifest without a permissions block); operator reports whether one
// was. A variable of env_vars that is not granted is not given: when it is
// required, a warning names the flag that grants it, or, under the
// policy's "missing_env: refuse", the call is denied.
func decideEnv(s *skill.Skill, g Grants, direct int, lookup LookupEnv) (env map[string]string, operator bool, warnings []string, err error) {
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
		if !secrets.ValidName(name) {
			return nil, false, nil, errdefs.New(errdefs.Invalid, "--allow-env %q: not a valid variable name", name)
		}
		granted[name] = true
	}
	given := slices.Clone(requested)
	for _, name := range g.Env[direct:] {
		if !slices.Contains(given, name) {
			given = append(given, name)
			operator = true
		}
	}
	env = map[string]string{}
	for _, name := range given {
		if !granted[name] {
			if required[name] {
				if g.Policy.refusesMissingEnv(s.ID) {
					return nil, false, nil, &errdefs.DeniedError{
						Permission: "env " + name,
						Reason:     fmt.Sprintf("skill %s requires it and it is not granted (missing_env: refuse at %s)", s.ID, g.Policy.At(g.Policy.missingEnvLine(s.ID))),
						Grant:      grantHint(g.Policy, s.ID, "--allow-env", "env", name),
					}
				}
				warnings = append(warnings, fmt.Sprintf("env %s: skill %s requires it (env_vars) and it is not granted, so the skill runs without it (grant with %s)",
					name, s.ID, grantHint(g.Policy, s.ID, "--allow-env", "env", name)))
			}
			continue
		}
		v, ok := lookup(name)
		if !ok {
			if required[name] {
				return nil, false, nil, errdefs.New(errdefs.Invalid, "env %s is granted and required by skill %s, but it is not set", name, s.ID)
			}
			continue
		}
		env[name] = v
	}
	for i, name := range g.Env {
		if slices.Contains(given, name) || slices.Index(g.Env, name) != i {
			continue
		}
		if !m.Permissions.HasBlock() {
			warnings = append(warnings, fmt.Sprintf("--allow-env %s: skill %s does not request it, so it is not given (its manifest has no permissions block: grant it to this skill alone with env: [%s] under skills[%q] in %s)",
				name, s.ID, name, s.ID, policyName(g.Policy)))
			continue
		}
		warnings = append(warnings, fmt.Sprintf("--allow-env %s: skill %s does not request it, so it is not given", name, s.ID))
	}
	return env, operator, warnings, nil
}

// decideNetwork intersects requested hosts with --allow-net grants. Every
// requested host is required: a skill that declares a host it needs cannot
// run until the operator grants it. The grants from index direct of g.Net
// on are given as they are, without a request (a manifest without a
// permissions block); operator reports whether one was.
func decideNetwork(s *skill.Skill, g Grants, direct int) (out []sandbox.HostPort, operator bool, warnings []string, err error) {
	var grants []sandbox.HostPort
	for _, raw := range g.Net {
		hp, err := ParseHostPort(raw)
		if err != nil {
			return nil, false, nil, errdefs.New(errdefs.Invalid, "--allow-net %q: %v", raw, err)
		}
		grants = append(grants, hp)
	}
	used := make([]bool, len(grants))
	for _, raw := range s.Bundle.Manifest.Permissions.Network {
		req, err := ParseHostPort(raw)
		if err == nil {
			err = proxyCanParse(req)
		}
		if err != nil {
			return nil, false, nil, errdefs.New(errdefs.Invalid, "manifest.yaml: permissions.network: %q: %v", raw, err)
		}
		ok := false
		for i, gr := range grants {
			if covers(gr, req) {
				ok, used[i] = true, true
				break
			}
		}
		if !ok {
			return nil, false, nil, &errdefs.DeniedError{
				Permission: "network " + req.String(),
				Reason:     fmt.Sprintf("skill %s requests it and it is not granted", s.ID),
				Grant:      grantHint(g.Policy, s.ID, "--allow-net", "net", req.String()),
			}
		}
		out = append(out, req)
	}
	for i := direct; i < len(grants); i++ {
		gr := grants[i]
		if err := proxyCanParse(gr); err != nil {
			return nil, false, nil, errdefs.New(errdefs.Invalid, "--allow-net %q: %v", g.Net[i], err)
		}
		used[i] = true
		if !slices.Contains(out, gr) {
			out = append(out, gr)
			operator = true
		}
	}
	for i, gr := range grants {
		if used[i] {
			continue
		}
		if !s.Bundle.Manifest.Permissions.HasBlock() {
			warnings = append(warnings, fmt.Sprintf("--allow-net %s: skill %s does not request it, so it is not given (its manifest has no permissions block: grant it to this skill alone with net: [%s] under skills[%q] in %s)",
				gr, s.ID, gr, s.ID, policyName(g.Policy)))
			continue
		}
		warnings = append(warnings, fmt.Sprintf("--allow-net %s: skill %s does not request it, so it is not given", gr, s.ID))
	}
	return out, operator, warnings, nil
}

// NetGrantHint names what would give skill s, decided with g, network
// access to dest (HOST:PORT): for a manifest with a permissions block, the
// request the manifest lacks and the flag; for one without, the flag when
// g's grants are for this skill alone (GrantUndeclared), and the skill's
// entry in the policy file.
func NetGrantHint(s *skill.Skill, g Grants, dest string) string {
	switch {
	case s.Bundle.Manifest.Permissions.HasBlock():
		return fmt.Sprintf("%s in permissions.network of the skill's manifest, and %s", dest, grantHint(g.Policy, s.ID, "--allow-net", "net", dest))
	case g.GrantUndeclared:
		return grantHint(g.Policy, s.ID, "--allow-net", "net", dest)
	default:
		return fmt.Sprintf("net: [%s] under skills[%q] in %s", dest, s.ID, policyName(g.Policy))
	}
}

// policyName names the policy file in hints: its path, or where the
// default one would be read from.
func policyName(p *Policy) string {
	if p != nil && p.Path != "" {
		return p.Path
	}
	return "the policy file (--policy FILE)"
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

// ParseHostPort parses HOST, HOST:PORT, [IPv6]:PORT, a bare or bracketed
// IPv6 address or *.DOMAIN[:PORT] (internal/hostport, the syntax every
// other reader of hosts shares). Host names are lower-cased, a trailing dot
// dropped, internationalised names converted to punycode; addresses are in
// canonical form.
func ParseHostPort(s string) (sandbox.HostPort, error) {
	hp, err := hostport.Parse(s)
	if err != nil {
		return sandbox.HostPort{}, err
	}
	return sandbox.HostPort{Host: hp.Host, Port: hp.Port}, nil
}

// trusted applies the trust gate to an external skill.
func trusted(s *skill.Skill, g Grants) (string, error) {
	if g.TrustRemoteCode {
		return "--trust-remote-code", nil
	}
	if g.Trust != nil {
		how, err := g.Trust.Trusted(s)
		if err == nil {
			return how, nil
		}
		if !errors.Is(err, ErrNotTrusted) {
			return "", err
		}
	}
	return "", &errdefs.DeniedError{
		Permission: "trust",
		Reason:     fmt.Sprintf("skill %s comes from an external root (%s) and is not trusted", s.ID, s.Dir),
		Grant:      fmt.Sprintf("--trust-remote-code for this call, or 'skillbox trust %s' to pin its digest", shellquote.Word(s.Ref())),
	}
}

// grantHint names the flag and, when a policy file is in use, the policy
// entry that would grant value.
func grantHint(p *Policy, id, flag, field, value string) string {
	h := flag + " " + value
	if p != nil && p.Path != "" {
		h += fmt.Sprintf(", or %s: [%s] under skills[%q] in %s", field, value, id, p.Path)
	}
	return h
}

// decideRead checks host read grants: each must exist; symlinks are
// resolved so that the backend mounts what the operator looked at, and
// duplicates are dropped. The result is sorted.
func decideRead(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		if !filepath.IsAbs(p) {
			return nil, errdefs.New(errdefs.Invalid, "--allow-read %q: want an absolute path", p)
		}
		real, err := filepath.EvalSymlinks(filepath.Clean(p))
		if err != nil {
			return nil, errdefs.New(errdefs.Invalid, "--allow-read %s: %v", p, errors.Unwrap(err))
		}
		if _, err := os.Stat(real); err != nil {
			return nil, errdefs.New(errdefs.Invalid, "--allow-read %s: %v", p, err)
		}
		if real == "/" {
			return nil, errdefs.New(errdefs.Invalid, "--allow-read %s: refusing to grant the whole file system", p)
		}
		if !slices.Contains(out, real) {
			out = append(out, real)
		}
	}
	slices.Sort(out)
	return out, nil
}

// decideLimits is the call's limits and the features they require of the
// backend: the manifest's, overridden by g's (a flag, else the policy's
// standing grant pg), bounded by the policy's ceilings.
func decideLimits(s *skill.Skill, g Grants, pg SkillGrants) (sandbox.Limits, []sandbox.Feature, []string, error) {
	ml := s.Bundle.Manifest.Permissions.Limits
	limits := sandbox.Limits{Timeout: ml.Timeout, Memory: ml.Memory, Pids: ml.Pids, Output: ml.Output}
	require := []sandbox.Feature{sandbox.FeatureTimeout, sandbox.FeatureOutputCap, sandbox.FeatureEnvScrub}
	if g.Timeout < 0 || g.Memory < 0 {
		return limits, nil, nil, errdefs.New(errdefs.Invalid, "timeout and memory must not be negative")
	}
	// A flag wins over the policy's standing grant for the skill.
	timeoutFrom, memoryFrom := "--timeout", "--memory"
	if g.Timeout == 0 && pg.Timeout > 0 {
		g.Timeout, timeoutFrom = pg.Timeout, fmt.Sprintf("skills[%q].timeout at %s", s.ID, g.Policy.At(pg.Line))
	}
	if g.Memory == 0 && pg.Memory > 0 {
		g.Memory, memoryFrom = pg.Memory, fmt.Sprintf("skills[%q].memory at %s", s.ID, g.Policy.At(pg.Line))
	}
	if g.Timeout > 0 {
		limits.Timeout = g.Timeout
	}
	if g.Memory > 0 {
		limits.Memory = g.Memory
		require = append(require, sandbox.FeatureMemory)
	}
	limits, require, warnings, err := applyCeilings(g.Policy, limits, require, g, timeoutFrom, memoryFrom)
	if err != nil {
		return limits, nil, nil, err
	}
	if limits.Memory > 0 && limits.Memory < sandbox.MinMemory {
		from := memoryFrom
		if g.Memory == 0 {
			from = "the manifest's permissions.limits.memory"
		}
		return limits, nil, nil, errdefs.New(errdefs.Invalid, "%s asks for %s of memory, below the floor of %s: the least a jail needs to start Python",
			from, skill.FormatSize(limits.Memory), skill.FormatSize(sandbox.MinMemory))
	}
	return limits, require, warnings, nil
}

// withLockedLimits returns g with the locked limits (Grants.LockedTimeout,
// LockedMemory) given where g gives none and they differ from decided, the
// limits the call gets without them; ok is false when nothing changes.
func withLockedLimits(g Grants, decided sandbox.Limits) (Grants, bool) {
	now := decided.WithDefaults()
	changed := false
	if g.Timeout == 0 && g.LockedTimeout > 0 && g.LockedTimeout != now.Timeout {
		g.Timeout, changed = g.LockedTimeout, true
	}
	if g.Memory == 0 && g.LockedMemory > 0 && g.LockedMemory != now.Memory {
		g.Memory, changed = g.LockedMemory, true
	}
	return g, changed
}

// applyCeilings bounds limits by the policy's ceilings. An operator limit
// (flag or standing grant) above a ceiling is denied; a manifest request
// above it is lowered with a warning; an unset limit gets the smaller of the
// backend default and the ceiling, and a memory ceiling becomes a hard
// requirement, because the operator demanded it.
func applyCeilings(p *Policy, l sandbox.Limits, require []sandbox.Feature, g Grants, timeoutFrom, memoryFrom string) (sandbox.Limits, []sandbox.Feature, []string, error) {
	if p == nil {
		return l, require, nil, nil
	}
	c := p.Ceilings
	var warnings []string
	if c.MaxTimeout > 0 {
		switch {
		case g.Timeout > c.MaxTimeout:
			return l, nil, nil, &errdefs.DeniedError{
				Permission: "timeout " + g.Timeout.String(),
				Reason:     fmt.Sprintf("%s exceeds the policy ceiling max_timeout %s (%s)", timeoutFrom, c.MaxTimeout, p.At(c.MaxTimeoutLine)),
				Grant:      "a higher ceilings.max_timeout at " + p.At(c.MaxTimeoutLine),
			}
		case l.Timeout > c.MaxTimeout:
			warnings = append(warnings, fmt.Sprintf("manifest timeout %s lowered to the policy ceiling max_timeout %s (%s)", l.Timeout, c.MaxTimeout, p.At(c.MaxTimeoutLine)))
			l.Timeout = c.MaxTimeout
		case l.Timeout == 0:
			l.Timeout = min(sandbox.DefaultTimeout, c.MaxTimeout)
		}
	}
	if c.MaxMemory > 0 {
		switch {
		case g.Memory > c.MaxMemory:
			return l, nil, nil, &errdefs.DeniedError{
				Permission: "memory " + skill.FormatSize(g.Memory),
				Reason:     fmt.Sprintf("%s exceeds the policy ceiling max_memory %s (%s)", memoryFrom, skill.FormatSize(c.MaxMemory), p.At(c.MaxMemoryLine)),
				Grant:      "a higher ceilings.max_memory at " + p.At(c.MaxMemoryLine),
			}
		case l.Memory > c.MaxMemory:
			warnings = append(warnings, fmt.Sprintf("manifest memory %s lowered to the policy ceiling max_memory %s (%s)", skill.FormatSize(l.Memory), skill.FormatSize(c.MaxMemory), p.At(c.MaxMemoryLine)))
			l.Memory = c.MaxMemory
		case l.Memory == 0:
			l.Memory = min(int64(sandbox.DefaultMemory), c.MaxMemory)
		}
		if !slices.Contains(require, sandbox.FeatureMemory) {
			require = append(require, sandbox.FeatureMemory)
		}
	}
	return l, require, warnings, nil
}

// caCerts are the operator's CA certificates (ca_file, --ca-file) a
// sandbox trusts with a network grant; none without one (nothing there
// reads them).
func caCerts(p *Policy, network []sandbox.HostPort) []byte {
	if p == nil || len(network) == 0 || len(p.CACerts) == 0 {
		return nil
	}
	return slices.Clone(p.CACerts)
}
