package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/egress"
	"github.com/skillbox-dev/skillbox/internal/secrets"
	"github.com/skillbox-dev/skillbox/internal/userdir"
	"github.com/skillbox-dev/skillbox/internal/yamlerr"
	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/skill"
)

// maxPolicyFile bounds a policy file; real ones are a few KiB.
const maxPolicyFile = 1 << 20

// Policy is an operator's policy file: standing per-skill grants, global
// ceilings and secret bindings. The zero value (and a nil *Policy) is the
// empty policy: no standing grants, no ceilings, every backend allowed.
//
// The file is YAML:
//
//	version: 1                       # optional; only 1 is known
//	ceilings:
//	  max_memory: 1GiB               # no call may get more
//	  max_timeout: 2m                # no call may run longer
//	  backends: [linux, pyodide]     # the only backends calls may use
//	  allow_process: false           # the process backend may never be used
//	skills:
//	  crypto/wallet_check:           # a skill id
//	    env: [ETHERSCAN_API_KEY]     # like --allow-env
//	    net: ["api.etherscan.io:443"] # like --allow-net
//	    build_net: ["pypi.org", "files.pythonhosted.org"] # its image build's hosts (image build --allow-net)
//	    read: [/srv/shared/data]     # like --allow-read (absolute host paths)
//	    timeout: 10s                 # like --timeout
//	    memory: 128MiB               # like --memory
//	    egress_resolve: ["api.test=127.0.0.1"] # like --egress-resolve
//	    warm: true                   # like serve --warm ID (see SkillGrants.Warm)
//	    missing_env: refuse          # overrides the top-level missing_env
//	    sdists: allow                # overrides the top-level sdists
//	secrets:
//	  ETHERSCAN_API_KEY: {hosts: [api.etherscan.io]}
//	egress_resolve: ["mirror.internal=10.0.0.7"] # for every skill
//	ca_file: /etc/skillbox/corp-ca.pem # CAs a skill granted network trusts too (CAFile)
//	missing_env: refuse              # deny a call missing a required env_vars entry (default: warn)
//	sdists: allow                    # environment builds may run sdists' setup scripts (default: refuse)
//	env_build:                       # limits of an environment build (EnvBuild; defaults in internal/skillenv)
//	  {memory: 3GiB, pids: 512, size: 2GiB, scratch: 512MiB, timeout: 10m}
//	build_images: true               # build a Dockerfile skill's image on its first call (default: false)
//	trusted_environments:            # code a shared process may import
//	  - python:/usr/bin/python3.12   # an interpreter's environment key, as skillbox lists it
//	  - sha256:<64 hex digits>       # a skill environment's digest, or an image digest
//	backends:                        # each backend's settings (Backends)
//	  linux: {pool_size: 4, min_idle: 1, idle_timeout: 5m, exec: auto}
//
// Parsing is strict: an unknown key, a wrong type or a duplicate key is an
// error naming FILE:LINE, so that a typo in a security policy can never
// silently grant or fail to restrict anything.
type Policy struct {
	// Path is the file the policy was read from ("" for one built in code).
	Path string
	// Ceilings bound every call, whatever the flags say.
	Ceilings Ceilings
	// Skills holds standing grants by skill id.
	Skills map[string]SkillGrants
	// Secrets binds secret variables to the hosts they may be sent to. A
	// granted variable listed here reaches the skill only as a placeholder;
	// the backend's egress proxy substitutes the value in requests to the
	// bound hosts (sandbox.Spec.Secrets, docs/EGRESS.md).
	Secrets map[string]SecretBinding
	// Resolve lists HOST=IP mappings (egress_resolve) that apply to every
	// skill granted network access to HOST, like --egress-resolve.
	Resolve []string
	// ResolveLine is where egress_resolve is in the file (0: not set).
	ResolveLine int
	// CAFile (ca_file) is an absolute path to a PEM file of one or more
	// CA certificates the operator trusts beyond the host's roots (a
	// company CA, a private service's): with any network grant a skill's
	// sandbox trusts them (sandbox.Spec.CACerts: its CA bundle, after the
	// host's), and so does the egress proxy for the upstreams it
	// verifies. Parse reads and checks the file; AddCAFile adds another
	// (--ca-file).
	CAFile string
	// CAFileLine is where ca_file is in the file (0: not set).
	CAFileLine int
	// CACerts are the PEM certificates of CAFile and of every AddCAFile.
	CACerts []byte
	// TrustedEnvironments (trusted_environments) lists the environments
	// whose code a backend may import in a process that serves more than
	// one call (sandbox.Spec.TrustedEnvironments): interpreters'
	// environment keys "python:/abs/path/of/interpreter", and digests
	// "sha256:<64 hex>" of skills' environments (what one holds: a
	// rebuild that installs anything else has another) and of images.
	// Default none: only the standard library and skillbox's own code are
	// trusted there.
	TrustedEnvironments []string
	// TrustedEnvironmentsLine is where trusted_environments is (0: not set).
	TrustedEnvironmentsLine int
	// MissingEnv (missing_env) says what a call of a skill gets when a
	// required variable of its env_vars is not granted: MissingEnvWarn
	// (the default, also for ""): it runs without it, with a warning
	// naming the flag that grants it; MissingEnvRefuse: it is denied, as
	// before there was a choice. A skill's own entry may override it.
	MissingEnv string
	// MissingEnvLine is where missing_env is in the file (0: not set).
	MissingEnvLine int
	// Sdists (sdists) says whether building a skill's environment may
	// install source distributions: SdistsRefuse (the default, also for
	// ""): wheels only, so that no package code runs during the build;
	// SdistsAllow: pip may build sdists, whose setup scripts run inside
	// the build's jail (network only to the configured index, writing
	// only the environment). A skill's own entry may override it. It is
	// part of an environment's key: allowing sdists builds other
	// environments.
	Sdists string
	// SdistsLine is where sdists is in the file (0: not set).
	SdistsLine int
	// EnvBuild (env_build) are the limits of an environment build; a zero
	// field is skillbox's default (docs/SKILLWARE.md, "Build limits").
	EnvBuild EnvBuildLimits
	// BuildImages (build_images: true) lets a call of a container skill
	// whose image is built from its Dockerfile build it on first use, as
	// `skillbox image build SKILL` does, when none is built for its bundle
	// digest (sandbox.Container.Build); like run/serve --build-images.
	// Default false: such a call is unavailable until the operator builds.
	BuildImages bool
	// BuildImagesLine is where build_images is (0: not set).
	BuildImagesLine int
	// Backends holds each backend's section of backends (by backend name):
	// settings as written, with their lines. Parse checks only their shape
	// (a mapping of single values); the backend named decodes and validates
	// them when the Runtime builds its drivers (sandbox.NewBackends), so
	// that this package knows no backend. Nil: every backend's defaults.
	Backends map[string]sandbox.Config
}

// EnvBuildLimits are the policy file's env_build: the limits of every
// environment build (internal/skillenv.BoundsOf makes them its Bounds). Zero fields mean the
// default; Line is where env_build is (0: not set).
type EnvBuildLimits struct {
	// Memory caps the build's memory cgroup (its processes and the pages
	// of both its tmpfs), Pids its processes plus threads.
	Memory int64 `json:"memory,omitempty"`
	Pids   int   `json:"pids,omitempty"`
	// Size is the environment's tmpfs (the most the environment may
	// hold), Scratch the build's scratch tmpfs (pip's downloads, an
	// sdist's build tree).
	Size    int64 `json:"size,omitempty"`
	Scratch int64 `json:"scratch,omitempty"`
	// Timeout bounds the whole build.
	Timeout time.Duration `json:"timeout,omitempty"`
	Line    int           `json:"-"`
}

// Ceilings are global upper bounds. Zero fields mean "no ceiling".
type Ceilings struct {
	// MaxMemory is the largest memory limit any call may get, in bytes.
	MaxMemory int64
	// MaxTimeout is the longest timeout any call may get.
	MaxTimeout time.Duration
	// Backends, when non-empty, lists the only backends calls may use.
	Backends []string
	// ForbidProcess is set by "allow_process: false": the process backend
	// (which isolates nothing) may never be used. Process is allowed unless
	// the policy says no, so that an absent policy changes nothing.
	ForbidProcess bool

	// Lines of each setting in the file, for messages (0: not set).
	MaxMemoryLine, MaxTimeoutLine, BackendsLine, AllowProcessLine int
}

// SkillGrants are the standing grants for one skill; they add to the flags
// of each call. Like flags, they grant only what the skill requests, except
// to a skill whose manifest has no permissions block (which cannot request
// anything): being made for this skill alone, its Env and Net are given to
// it as they are, in run and serve alike.
type SkillGrants struct {
	Env []string
	Net []string
	// BuildNet (build_net) grants the build of the skill's image from its
	// Dockerfile these hosts (HOST[:PORT], as net), reached only through
	// the egress proxy: `skillbox image build SKILL` and builds on first
	// use. Net is the calls' grant and never the build's.
	BuildNet []string
	Read     []string
	Timeout  time.Duration
	Memory   int64
	// Resolve lists HOST=IP mappings, like --egress-resolve.
	Resolve []string
	// Warm ("warm: true", like serve --warm ID) lets the backend import the
	// skill once in a process that serves several of its calls, for speed:
	// calls of this skill may share state that its import created
	// (sandbox.Spec.Warm). Never a default.
	Warm bool
	// MissingEnv overrides Policy.MissingEnv for this skill ("" = not set).
	MissingEnv string
	// MissingEnvLine is where the skill's missing_env is (0: not set).
	MissingEnvLine int
	// Sdists overrides Policy.Sdists for this skill ("" = not set).
	Sdists string
	// Line is where the skill's entry starts in the file.
	Line int
}

// The values of missing_env.
const (
	MissingEnvWarn   = "warn"
	MissingEnvRefuse = "refuse"
)

// The values of sdists.
const (
	SdistsRefuse = "refuse"
	SdistsAllow  = "allow"
)

// SecretBinding restricts where a secret may be sent.
type SecretBinding struct {
	// Hosts are HOST or HOST:PORT patterns, as for --allow-net.
	Hosts []string
	Line  int
}

// DefaultPath is $XDG_CONFIG_HOME/skillbox/policy.yaml, falling back to
// ~/.config/skillbox/policy.yaml; "" when there is no configuration folder
// (see ConfigDir), which Load reads as no policy file.
func DefaultPath(getenv func(string) string) string {
	if dir := ConfigDir(getenv); dir != "" {
		return filepath.Join(dir, "policy.yaml")
	}
	return ""
}

// ConfigDir is $XDG_CONFIG_HOME/skillbox (an absolute XDG_CONFIG_HOME only,
// as the XDG spec says), else ~/.config/skillbox, else "" when HOME is not
// absolute either: never a folder relative to the working directory, which
// could ship a policy granting its own skills.
func ConfigDir(getenv func(string) string) string { return userdir.Config(getenv) }

// Load reads the policy file at path. A missing file is the empty policy
// when optional is true (the default location) and errdefs.Invalid
// otherwise (a file the operator named must exist).
func Load(path string, optional bool) (*Policy, error) {
	if path == "" && optional {
		return &Policy{}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && optional {
			return &Policy{}, nil
		}
		return nil, errdefs.New(errdefs.Invalid, "policy file: %v", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPolicyFile+1))
	if err != nil {
		return nil, errdefs.New(errdefs.Invalid, "policy file %s: %v", path, err)
	}
	return Parse(path, data)
}

// Parse parses a policy file's bytes; name is used in messages. Errors are
// errdefs.Invalid, one "NAME:LINE: field: problem" per line.
func Parse(name string, data []byte) (*Policy, error) {
	p := &fileParser{name: name}
	pol := &Policy{Path: name}
	if len(data) > maxPolicyFile {
		p.errorf(nil, "", "file is larger than %d bytes", maxPolicyFile)
		return nil, p.err()
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return pol, nil // an empty file is the empty policy
	}
	root := p.decode(data)
	if root == nil {
		return nil, p.err()
	}
	if isNullNode(root) {
		return pol, nil
	}
	for _, kv := range p.mapping(root, "") {
		switch kv.key {
		case "version":
			if n, ok := p.int(kv.val, "version"); ok && n != 1 {
				p.errorf(kv.val, "version", "unknown policy version %d (this skillbox knows 1)", n)
			}
		case "ceilings":
			pol.Ceilings = p.ceilings(kv.val)
		case "skills":
			pol.Skills = p.skills(kv.val)
		case "secrets":
			pol.Secrets = p.secrets(kv.val)
		case "egress_resolve":
			pol.Resolve, pol.ResolveLine = p.resolve(kv.val, "egress_resolve"), kv.keyNode.Line
		case "trusted_environments":
			pol.TrustedEnvironments, pol.TrustedEnvironmentsLine = p.environments(kv.val, "trusted_environments"), kv.keyNode.Line
		case "backends":
			pol.Backends = p.backends(kv.val, name)
		case "missing_env":
			pol.MissingEnv, pol.MissingEnvLine = p.missingEnv(kv.val, "missing_env"), kv.keyNode.Line
		case "ca_file":
			pol.CAFile, pol.CAFileLine = p.caFile(kv.val, pol), kv.keyNode.Line
		case "sdists":
			pol.Sdists, pol.SdistsLine = p.sdists(kv.val, "sdists"), kv.keyNode.Line
		case "env_build":
			pol.EnvBuild = p.envBuild(kv.val)
			pol.EnvBuild.Line = kv.keyNode.Line
		case "build_images":
			pol.BuildImages, _ = p.bool(kv.val, "build_images")
			pol.BuildImagesLine = kv.keyNode.Line
		default:
			p.errorf(kv.keyNode, "", "unknown field %q (known: version, ceilings, skills, secrets, egress_resolve, missing_env, sdists, env_build, build_images, trusted_environments, ca_file, backends)", kv.key)
		}
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	return pol, nil
}

// At names a line of the policy file for messages: "FILE:LINE".
func (p *Policy) At(line int) string {
	if p == nil || p.Path == "" {
		return "the policy"
	}
	if line <= 0 {
		return p.Path
	}
	return fmt.Sprintf("%s:%d", p.Path, line)
}

// refusesMissingEnv reports whether a call of skill id that lacks a
// required variable of its env_vars is denied (missing_env: refuse, the
// skill's own setting first).
func (p *Policy) refusesMissingEnv(id string) bool {
	if p == nil {
		return false
	}
	if v := p.Skills[id].MissingEnv; v != "" {
		return v == MissingEnvRefuse
	}
	return p.MissingEnv == MissingEnvRefuse
}

// AllowsSdists reports whether building the environment of skill id may
// install source distributions (sdists: allow, the skill's own setting
// first). A nil policy allows none.
func (p *Policy) AllowsSdists(id string) bool {
	if p == nil {
		return false
	}
	if v := p.Skills[id].Sdists; v != "" {
		return v == SdistsAllow
	}
	return p.Sdists == SdistsAllow
}

// missingEnvLine is the line of the missing_env setting that applies to
// skill id (0 when none does).
func (p *Policy) missingEnvLine(id string) int {
	if p == nil {
		return 0
	}
	if sg := p.Skills[id]; sg.MissingEnv != "" {
		return sg.MissingEnvLine
	}
	return p.MissingEnvLine
}

// BuildsImages reports whether the policy lets calls build a Dockerfile
// skill's image on first use (build_images: true). A nil policy does not.
func (p *Policy) BuildsImages() bool { return p != nil && p.BuildImages }

// BuildNetwork returns the hosts the policy grants the build of skill
// id's image (skills.ID.build_net), nil when none. A nil policy grants
// none.
func (p *Policy) BuildNetwork(id string) ([]sandbox.HostPort, error) {
	if p == nil {
		return nil, nil
	}
	var out []sandbox.HostPort
	for _, h := range p.Skills[id].BuildNet {
		hp, err := ParseHostPort(h)
		if err != nil {
			return nil, errdefs.New(errdefs.Invalid, "skills[%q].build_net %q: %v", id, h, err)
		}
		out = append(out, hp)
	}
	return out, nil
}

// ForSkill returns the standing grants for id (zero if none).
func (p *Policy) ForSkill(id string) SkillGrants {
	if p == nil {
		return SkillGrants{}
	}
	return p.Skills[id]
}

// CheckBackend refuses, with a *errdefs.DeniedError naming the policy line,
// a backend the ceilings do not allow. "auto" is checked after it has
// chosen a concrete backend.
func (p *Policy) CheckBackend(name string) error {
	if p == nil || name == "" || name == sandbox.Auto {
		return nil
	}
	c := p.Ceilings
	if name == "process" && c.ForbidProcess {
		return &errdefs.DeniedError{
			Permission: "backend process",
			Reason:     fmt.Sprintf("the policy forbids it (allow_process: false at %s)", p.At(c.AllowProcessLine)),
			Grant:      "allow_process: true under ceilings in " + p.At(c.AllowProcessLine),
		}
	}
	if len(c.Backends) > 0 && !slices.Contains(c.Backends, name) {
		return &errdefs.DeniedError{
			Permission: "backend " + name,
			Reason:     fmt.Sprintf("the policy allows only %s (ceilings.backends at %s)", strings.Join(c.Backends, ", "), p.At(c.BackendsLine)),
			Grant:      fmt.Sprintf("%s in ceilings.backends at %s", name, p.At(c.BackendsLine)),
		}
	}
	return nil
}

// fileParser collects the errors of one policy file.
type fileParser struct {
	name string
	errs yamlerr.List
}

func (p *fileParser) errorf(n *yaml.Node, field, format string, args ...any) {
	p.errs.Add(n, field, format, args...)
}

func (p *fileParser) err() error {
	p.errs.File = "policy " + p.name
	return p.errs.Err()
}

func (p *fileParser) decode(data []byte) (root *yaml.Node) {
	defer func() {
		if r := recover(); r != nil {
			p.errorf(nil, "", "YAML syntax error: %v", r)
			root = nil
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null"} // only comments
	} else if err != nil {
		p.errs.Syntax(err)
		return nil
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		p.errorf(&next, "", "more than one YAML document; a policy is a single mapping")
		return nil
	}
	if len(doc.Content) == 0 {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null"}
	}
	return doc.Content[0]
}

type pair struct {
	key     string
	keyNode *yaml.Node
	val     *yaml.Node
}

func isNullNode(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// check refuses aliases and anchors: a policy has no need for them, and
// refusing them rules out alias bombs and values that change at a distance.
func (p *fileParser) check(n *yaml.Node, field string) bool {
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		p.errorf(n, field, "YAML anchors and aliases are not allowed in a policy")
		return false
	}
	return true
}

// mapping returns the pairs of a mapping node, reporting duplicate and
// non-string keys. A null value is an empty mapping.
func (p *fileParser) mapping(n *yaml.Node, field string) []pair {
	if !p.check(n, field) || isNullNode(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		what := "top level"
		if field != "" {
			what = field
		}
		p.errorf(n, "", "%s must be a mapping, got %s", what, nodeKind(n))
		return nil
	}
	var out []pair
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !p.check(k, field) || !p.check(v, field) {
			continue
		}
		if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!null" {
			p.errorf(k, field, "keys must be strings")
			continue
		}
		if prev, dup := seen[k.Value]; dup {
			p.errorf(k, join(field, k.Value), "duplicate key (first at line %d)", prev)
			continue
		}
		seen[k.Value] = k.Line
		out = append(out, pair{k.Value, k, v})
	}
	return out
}

func join(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}

func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "nothing"
		case "!!str":
			return fmt.Sprintf("the string %q", n.Value)
		}
		return n.Value
	}
	return "an alias"
}

func (p *fileParser) str(n *yaml.Node, field string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		p.errorf(n, field, "must be a string, got %s", nodeKind(n))
		return "", false
	}
	return n.Value, true
}

func (p *fileParser) int(n *yaml.Node, field string) (int, bool) {
	var v int
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&v) != nil {
		p.errorf(n, field, "must be an integer, got %s", nodeKind(n))
		return 0, false
	}
	return v, true
}

func (p *fileParser) bool(n *yaml.Node, field string) (bool, bool) {
	var v bool
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&v) != nil {
		p.errorf(n, field, "must be true or false, got %s", nodeKind(n))
		return false, false
	}
	return v, true
}

// strings reads a list of non-empty strings; a single string is refused so
// that "env: FOO, BAR" cannot be read as one odd name.
func (p *fileParser) strings(n *yaml.Node, field string) []string {
	if !p.check(n, field) || isNullNode(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, field, "must be a list such as [a, b], got %s", nodeKind(n))
		return nil
	}
	var out []string
	for i, it := range n.Content {
		f := fmt.Sprintf("%s[%d]", field, i)
		if !p.check(it, f) {
			continue
		}
		s, ok := p.str(it, f)
		if !ok {
			continue
		}
		if strings.TrimSpace(s) == "" {
			p.errorf(it, f, "must not be empty")
			continue
		}
		out = append(out, s)
	}
	return out
}

func (p *fileParser) duration(n *yaml.Node, field string) time.Duration {
	s, ok := p.str(n, field)
	if !ok {
		return 0
	}
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || d <= 0 {
		p.errorf(n, field, "%q is not a positive duration such as 30s or 2m", s)
		return 0
	}
	return d
}

// memory reads a memory limit: a size no smaller than sandbox.MinMemory.
func (p *fileParser) memory(n *yaml.Node, field string) int64 {
	s, ok := p.str(n, field)
	if !ok {
		return 0
	}
	v, err := skill.ParseSize(s)
	if err != nil || v <= 0 {
		p.errorf(n, field, "%q is not a positive size such as 256MiB or 1GiB", s)
		return 0
	}
	if v < sandbox.MinMemory {
		p.errorf(n, field, "%s is below the floor of %s, the least memory a jail needs to start Python", skill.FormatSize(v), skill.FormatSize(sandbox.MinMemory))
		return 0
	}
	return v
}

func (p *fileParser) ceilings(n *yaml.Node) Ceilings {
	var c Ceilings
	for _, kv := range p.mapping(n, "ceilings") {
		f := "ceilings." + kv.key
		switch kv.key {
		case "max_memory":
			c.MaxMemory, c.MaxMemoryLine = p.memory(kv.val, f), kv.keyNode.Line
		case "max_timeout":
			c.MaxTimeout, c.MaxTimeoutLine = p.duration(kv.val, f), kv.keyNode.Line
		case "backends":
			c.BackendsLine = kv.keyNode.Line
			for i, b := range p.strings(kv.val, f) {
				if b == sandbox.Auto {
					p.errorf(kv.val.Content[i], f, "list concrete backends (linux, pyodide, process, ...), not auto")
					continue
				}
				c.Backends = append(c.Backends, b)
			}
			if len(c.Backends) == 0 && !isNullNode(kv.val) && kv.val.Kind == yaml.SequenceNode && len(kv.val.Content) == 0 {
				p.errorf(kv.val, f, "an empty list would forbid every backend; remove the key to allow all")
			}
		case "allow_process":
			allow, _ := p.bool(kv.val, f)
			c.ForbidProcess, c.AllowProcessLine = !allow, kv.keyNode.Line
		default:
			p.errorf(kv.keyNode, "ceilings", "unknown field %q (known: max_memory, max_timeout, backends, allow_process)", kv.key)
		}
	}
	return c
}

func (p *fileParser) skills(n *yaml.Node) map[string]SkillGrants {
	out := map[string]SkillGrants{}
	for _, kv := range p.mapping(n, "skills") {
		if !skill.ValidID(kv.key) {
			p.errorf(kv.keyNode, "skills", "%q is not a skill id (category/name)", kv.key)
			continue
		}
		f := fmt.Sprintf("skills[%q]", kv.key)
		g := SkillGrants{Line: kv.keyNode.Line}
		for _, e := range p.mapping(kv.val, f) {
			ff := f + "." + e.key
			switch e.key {
			case "env":
				for i, name := range p.strings(e.val, ff) {
					if !secrets.ValidName(name) {
						p.errorf(e.val.Content[i], ff, "%q is not a valid variable name", name)
						continue
					}
					g.Env = append(g.Env, name)
				}
			case "net", "build_net":
				for i, h := range p.strings(e.val, ff) {
					hp, err := ParseHostPort(h)
					if err == nil && e.key == "build_net" {
						err = proxyCanParse(hp)
					}
					if err != nil {
						p.errorf(e.val.Content[i], ff, "%q: %v", h, err)
						continue
					}
					if e.key == "net" {
						g.Net = append(g.Net, h)
					} else {
						g.BuildNet = append(g.BuildNet, h)
					}
				}
			case "read":
				for i, r := range p.strings(e.val, ff) {
					if !filepath.IsAbs(r) {
						p.errorf(e.val.Content[i], ff, "%q must be an absolute host path", r)
						continue
					}
					g.Read = append(g.Read, filepath.Clean(r))
				}
			case "timeout":
				g.Timeout = p.duration(e.val, ff)
			case "memory":
				g.Memory = p.memory(e.val, ff)
			case "egress_resolve":
				g.Resolve = p.resolve(e.val, ff)
			case "warm":
				g.Warm, _ = p.bool(e.val, ff)
			case "missing_env":
				g.MissingEnv, g.MissingEnvLine = p.missingEnv(e.val, ff), e.keyNode.Line
			case "sdists":
				g.Sdists = p.sdists(e.val, ff)
			default:
				p.errorf(e.keyNode, f, "unknown field %q (known: env, net, build_net, read, timeout, memory, egress_resolve, warm, missing_env, sdists)", e.key)
			}
		}
		out[kv.key] = g
	}
	return out
}

func (p *fileParser) secrets(n *yaml.Node) map[string]SecretBinding {
	out := map[string]SecretBinding{}
	for _, kv := range p.mapping(n, "secrets") {
		if !secrets.ValidName(kv.key) {
			p.errorf(kv.keyNode, "secrets", "%q is not a valid variable name", kv.key)
			continue
		}
		f := "secrets." + kv.key
		b := SecretBinding{Line: kv.keyNode.Line}
		hostsSet := false
		for _, e := range p.mapping(kv.val, f) {
			if e.key != "hosts" {
				p.errorf(e.keyNode, f, "unknown field %q (known: hosts)", e.key)
				continue
			}
			hostsSet = true
			for i, h := range p.strings(e.val, f+".hosts") {
				hp, err := ParseHostPort(h)
				if err == nil {
					err = proxyCanParse(hp)
				}
				if err != nil {
					p.errorf(e.val.Content[i], f+".hosts", "%q: %v", h, err)
					continue
				}
				b.Hosts = append(b.Hosts, h)
			}
		}
		if !hostsSet {
			p.errorf(kv.keyNode, f, "hosts is required (the hosts this secret may be sent to)")
		}
		out[kv.key] = b
	}
	return out
}

// backends reads the backends section: per backend name a mapping of
// settings, each a single value (integer, boolean, string or number). What
// a backend's settings mean is its own business (sandbox.Config); here only
// the shape is checked.
func (p *fileParser) backends(n *yaml.Node, file string) map[string]sandbox.Config {
	out := map[string]sandbox.Config{}
	for _, kv := range p.mapping(n, "backends") {
		if kv.key == sandbox.Auto || strings.TrimSpace(kv.key) == "" {
			p.errorf(kv.keyNode, "backends", "%q is not a backend: name a concrete one (linux, pyodide, process, ...)", kv.key)
			continue
		}
		f := "backends." + kv.key
		cfg := sandbox.Config{Backend: kv.key, File: file, Line: kv.keyNode.Line}
		for _, e := range p.mapping(kv.val, f) {
			ff := f + "." + e.key
			kind := strings.TrimPrefix(e.val.ShortTag(), "!!")
			switch {
			case e.val.Kind != yaml.ScalarNode:
				p.errorf(e.val, ff, "must be a single value, got %s", nodeKind(e.val))
			case kind == "null":
				p.errorf(e.val, ff, "needs a value (remove the key for the default)")
			case kind != "int" && kind != "bool" && kind != "str" && kind != "float":
				p.errorf(e.val, ff, "must be a number, true/false or a string, got %s", e.val.Tag)
			default:
				cfg.Settings = append(cfg.Settings, sandbox.Setting{Key: e.key, Value: e.val.Value, Kind: kind, Line: e.keyNode.Line})
			}
		}
		out[kv.key] = cfg
	}
	return out
}

// missingEnv reads a missing_env setting: warn or refuse.
func (p *fileParser) missingEnv(n *yaml.Node, field string) string {
	v, ok := p.str(n, field)
	if !ok {
		return ""
	}
	if v != MissingEnvWarn && v != MissingEnvRefuse {
		p.errorf(n, field, "%q: want warn (run without the variable, with a warning) or refuse (deny the call)", v)
		return ""
	}
	return v
}

// sdists reads an sdists setting: allow or refuse.
func (p *fileParser) sdists(n *yaml.Node, field string) string {
	v, ok := p.str(n, field)
	if !ok {
		return ""
	}
	if v != SdistsAllow && v != SdistsRefuse {
		p.errorf(n, field, "%q: want allow (environment builds may run source distributions' setup scripts, in the build's jail) or refuse (wheels only, the default)", v)
		return ""
	}
	return v
}

// envBuild reads env_build: positive sizes, a pids count and a duration.
func (p *fileParser) envBuild(n *yaml.Node) EnvBuildLimits {
	var l EnvBuildLimits
	size := func(v *yaml.Node, f string) int64 {
		s, ok := p.str(v, f)
		if !ok {
			return 0
		}
		x, err := skill.ParseSize(s)
		if err != nil || x <= 0 {
			p.errorf(v, f, "%q is not a positive size such as 512MiB or 2GiB", s)
			return 0
		}
		return x
	}
	for _, kv := range p.mapping(n, "env_build") {
		f := "env_build." + kv.key
		switch kv.key {
		case "memory":
			l.Memory = size(kv.val, f)
		case "size":
			l.Size = size(kv.val, f)
		case "scratch":
			l.Scratch = size(kv.val, f)
		case "pids":
			if v, ok := p.int(kv.val, f); ok && v <= 0 {
				p.errorf(kv.val, f, "%d is not a positive number of processes", v)
			} else {
				l.Pids = v
			}
		case "timeout":
			l.Timeout = p.duration(kv.val, f)
		default:
			p.errorf(kv.keyNode, "env_build", "unknown field %q (known: memory, pids, size, scratch, timeout)", kv.key)
		}
	}
	return l
}

// caFile reads ca_file: an absolute path to a PEM file of certificates,
// read and checked now (ReadCAFile) into pol.CACerts.
func (p *fileParser) caFile(n *yaml.Node, pol *Policy) string {
	path, ok := p.str(n, "ca_file")
	if !ok {
		return ""
	}
	data, err := ReadCAFile(path)
	if err != nil {
		p.errorf(n, "ca_file", "%v", err)
		return ""
	}
	pol.CACerts = egress.JoinPEM(pol.CACerts, data)
	return path
}

// maxCAFile bounds an operator's CA file; the largest system bundles are
// about 200 KiB.
const maxCAFile = 4 << 20

// ReadCAFile reads an operator's CA file (ca_file, --ca-file): an
// absolute path to PEM holding one or more CA certificates and nothing
// else (egress.ParseCAs). Errors are errdefs.Invalid and say what is
// wrong.
func ReadCAFile(path string) ([]byte, error) {
	if !filepath.IsAbs(path) {
		return nil, errdefs.New(errdefs.Invalid, "CA file %q: want an absolute path", path)
	}
	// Not a FIFO or a device, which could block or never end.
	if fi, err := os.Stat(path); err != nil {
		return nil, errdefs.New(errdefs.Invalid, "CA file: %v", err)
	} else if !fi.Mode().IsRegular() {
		return nil, errdefs.New(errdefs.Invalid, "CA file %s: not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, errdefs.New(errdefs.Invalid, "CA file: %v", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCAFile+1))
	if err != nil {
		return nil, errdefs.New(errdefs.Invalid, "CA file %s: %v", path, err)
	}
	if len(data) > maxCAFile {
		return nil, errdefs.New(errdefs.Invalid, "CA file %s: larger than %d bytes", path, maxCAFile)
	}
	if _, err := egress.ParseCAs("CA file "+path, data); err != nil {
		return nil, errdefs.New(errdefs.Invalid, "%v", err)
	}
	return data, nil
}

// AddCAFile adds the certificates of an operator's CA file (--ca-file)
// to p.CACerts, after the policy file's ca_file.
func (p *Policy) AddCAFile(path string) error {
	data, err := ReadCAFile(path)
	if err != nil {
		return err
	}
	p.CACerts = egress.JoinPEM(p.CACerts, data)
	return nil
}

// resolve reads a list of HOST=IP mappings (ParseResolve).
func (p *fileParser) resolve(n *yaml.Node, field string) []string {
	var out []string
	for i, r := range p.strings(n, field) {
		if _, _, err := ParseResolve(r); err != nil {
			p.errorf(n.Content[i], field, "%q: %v", r, err)
			continue
		}
		out = append(out, r)
	}
	return out
}

// environments reads trusted_environments: a list of environment keys
// ("python:" and the absolute, clean path of an interpreter) and digests
// of skills' environments and images ("sha256:" and 64 lower-case hex
// digits). Anything else — a
// relative path, a short or upper-case digest, an unknown scheme — is an
// error, so that a typo can never trust something else.
func (p *fileParser) environments(n *yaml.Node, field string) []string {
	var out []string
	for i, e := range p.strings(n, field) {
		f := fmt.Sprintf("%s[%d]", field, i)
		if err := CheckEnvironment(e); err != nil {
			p.errorf(n.Content[i], f, "%q: %v", e, err)
			continue
		}
		if slices.Contains(out, e) {
			p.errorf(n.Content[i], f, "%q is listed twice", e)
			continue
		}
		out = append(out, e)
	}
	return out
}

// CheckEnvironment checks one trusted_environments entry: an environment
// key "python:/absolute/clean/path", or a digest "sha256:<64 hex>" of a
// skill's environment or of an image.
func CheckEnvironment(e string) error {
	switch {
	case strings.HasPrefix(e, "sha256:"):
		hexPart := strings.TrimPrefix(e, "sha256:")
		if len(hexPart) != 64 || strings.Trim(hexPart, "0123456789abcdef") != "" {
			return fmt.Errorf("a digest (a skill environment's or an image's) is sha256: and 64 lower-case hex digits")
		}
		return nil
	case strings.HasPrefix(e, "python:"):
		path := strings.TrimPrefix(e, "python:")
		if !filepath.IsAbs(path) || filepath.Clean(path) != path || path == "/" {
			return fmt.Errorf("an environment key is python: and the absolute, clean path of an interpreter")
		}
		if strings.ContainsAny(path, "\x00\n\r") {
			return fmt.Errorf("the interpreter path holds a control character")
		}
		return nil
	default:
		return fmt.Errorf("want an environment key python:/PATH/OF/INTERPRETER, or a digest sha256:<64 hex> of a skill's environment or of an image")
	}
}
