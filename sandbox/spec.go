package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"time"
)

// Mode says whether calls share a worker.
type Mode string

const (
	// ModeSingleUse gives every call fresh interpreter state (the default).
	ModeSingleUse Mode = "single-use"
	// ModeSession reuses one worker for the calls of one Sandbox, so module
	// state persists between them. Opt-in, for one caller's session only.
	ModeSession Mode = "session"
)

// Feature names a guarantee a backend may or may not enforce.
type Feature string

// Features a Spec can require. Their string values appear in error messages.
const (
	FeatureTimeout        Feature = "timeout"          // wall-clock limit that kills the whole process tree
	FeatureMemory         Feature = "memory-limit"     // memory cap (with swap)
	FeaturePids           Feature = "pids-limit"       // process/thread count cap
	FeatureCPU            Feature = "cpu-limit"        // CPU time or share cap
	FeatureOutputCap      Feature = "output-cap"       // result and stdout/stderr caps
	FeatureEnvScrub       Feature = "env-scrub"        // no host variable beyond the grant
	FeatureNoNetwork      Feature = "no-network"       // no network at all unless granted
	FeatureNetAllowlist   Feature = "net-allowlist"    // network limited to granted hosts
	FeatureFSIsolation    Feature = "fs-isolation"     // no host files beyond bundle, runtime and scratch
	FeatureProcIsolation  Feature = "proc-isolation"   // cannot see or signal host processes
	FeatureKernelHardened Feature = "kernel-hardening" // seccomp / syscall filtering
	// FeatureSecretBinding: Spec.Secrets are honoured — the sandbox sees only
	// each placeholder, and a host-side egress proxy substitutes the value in
	// requests to the bound hosts only. A backend without such a proxy must
	// not claim it (it would have to leak the value or break the skill).
	FeatureSecretBinding Feature = "secret-binding"
)

// Limits bounds one call. A zero field means "the backend's default".
type Limits struct {
	Timeout time.Duration `json:"timeout,omitempty"`
	// Memory in bytes (including swap where the backend can tell them apart).
	Memory int64 `json:"memory,omitempty"`
	// Pids is the maximum number of processes and threads.
	Pids int `json:"pids,omitempty"`
	// Output caps the JSON result in bytes.
	Output int64 `json:"output,omitempty"`
	// Stdio caps each of captured stdout and stderr in bytes; beyond it the
	// capture is truncated with a marker, not failed.
	Stdio int64 `json:"stdio,omitempty"`
	// CPU is the CPU share in cores (e.g. 1.0); zero means the default.
	CPU float64 `json:"cpu,omitempty"`
}

// Defaults applied by backends when a Limits field is zero.
const (
	DefaultTimeout = 30 * time.Second
	DefaultMemory  = 256 << 20
	DefaultPids    = 64
	DefaultOutput  = 1 << 20
	DefaultStdio   = 64 << 10
)

// MinMemory is the smallest memory limit a call may ask for: below it no
// interpreter starts, so a smaller limit is refused as invalid rather than
// failing every call. Between it and what the skill really needs, calls
// fail with a memory limit error.
const MinMemory = 16 << 20

// WithDefaults returns l with every zero field set to its default.
func (l Limits) WithDefaults() Limits {
	if l.Timeout <= 0 {
		l.Timeout = DefaultTimeout
	}
	if l.Memory <= 0 {
		l.Memory = DefaultMemory
	}
	if l.Pids <= 0 {
		l.Pids = DefaultPids
	}
	if l.Output <= 0 {
		l.Output = DefaultOutput
	}
	if l.Stdio <= 0 {
		l.Stdio = DefaultStdio
	}
	return l
}

// HostPort is one network grant: a host name (or address) and a port; Port 0
// means any port.
type HostPort struct {
	Host string `json:"host"`
	Port int    `json:"port,omitempty"`
}

func (h HostPort) String() string {
	if h.Port == 0 {
		return h.Host
	}
	return net.JoinHostPort(h.Host, strconv.Itoa(h.Port))
}

// SecretBinding is a granted secret that never enters the sandbox. The
// sandbox sees Placeholder, as the value of the variable Name (Spec.Env and
// Request.Config hold Name=Placeholder); the backend's egress proxy puts
// Value in its place in requests to Hosts only (internal/jail.EgressConfig).
//
// Value is never serialised (json:"-") and never printed by the fmt verbs.
type SecretBinding struct {
	// Name is the variable name; it names the secret in audit records.
	Name string `json:"name"`
	// Placeholder is what the skill sees (egress.NewPlaceholder).
	Placeholder string `json:"placeholder"`
	// Value is the real secret, for the host-side proxy only.
	Value string `json:"-"`
	// Hosts are the destinations the value may be sent to; each is covered
	// by Spec.Network.
	Hosts []HostPort `json:"hosts"`
}

// String describes b without its value.
func (b SecretBinding) String() string {
	return fmt.Sprintf("secret %s (placeholder %s, hosts %v)", b.Name, b.Placeholder, b.Hosts)
}

// GoString is String, so that %#v does not print the value either.
func (b SecretBinding) GoString() string { return b.String() }

// Spec is everything a backend needs to run calls of one skill under one
// effective grant. Policy builds it; backends read it and never re-decide.
type Spec struct {
	// SkillID is the skill's id (category/name) for messages and audit.
	SkillID string `json:"skill_id"`
	// SkillRef is how a command line names the skill: its id when it was
	// found by id, else its folder (skill.Skill.Ref). Hints that print a
	// command use it, so the command works as printed; empty means SkillID.
	// It is not part of what the sandbox runs, so not of its key.
	SkillRef string `json:"-"`
	// Digest is the bundle's content digest ("sha256:...").
	Digest string `json:"digest"`
	// BundleDir is the host path of the skill folder; it is mounted or
	// copied read-only.
	BundleDir string `json:"bundle_dir"`
	// Manifest is the parsed manifest as JSON; the harness offers it to the
	// skill as BaseSkill.manifest.
	Manifest json.RawMessage `json:"manifest,omitempty"`
	// Python is the interpreter to use on the host; empty means the
	// backend's own choice (see its docs).
	Python string `json:"python,omitempty"`
	// Requirements are the manifest's requirement strings ("requests>=2");
	// the backend checks them against its interpreter before the first call
	// (internal/backend.CheckRequirements) and fails with
	// errdefs.Unavailable listing what is missing.
	Requirements []string `json:"requirements,omitempty"`
	// Environment, when not nil, is the skill's own Python environment,
	// built from Requirements: a backend that runs environments
	// (EnvironmentRunner) runs the skill on it, read-only, its packages
	// imported only in a call's own process unless TrustedEnvironments
	// lists its Digest. Other backends ignore it.
	Environment *Environment `json:"environment,omitempty"`
	// Env holds exactly the environment variables granted to the skill; a
	// bound secret (see Secrets) appears with its placeholder, never its
	// value. Backends add only fixed, non-secret variables (PATH, HOME,
	// LANG, ...) and, with a network grant, the proxy's (egress Proxy.Env).
	Env map[string]string `json:"-"`
	// Network lists the granted destinations; empty means no network. A
	// backend that cannot limit the network to exactly these refuses (the
	// policy requires FeatureNetAllowlist when it is not empty).
	Network []HostPort `json:"network,omitempty"`
	// Resolve maps host names to fixed addresses (--egress-resolve
	// HOST=IP, policy egress_resolve). A mapped name is never looked up, and
	// the mapping grants those addresses even in ranges the proxy otherwise
	// refuses (loopback, private...). Only names covered by Network appear.
	Resolve map[string][]netip.Addr `json:"resolve,omitempty"`
	// Secrets are granted variables bound to hosts by the policy file. Env
	// holds their placeholders; the values are here only, for the egress
	// proxy. A Spec with Secrets requires FeatureSecretBinding.
	Secrets []SecretBinding `json:"secrets,omitempty"`
	// CACerts are PEM certificates the operator trusts beyond the host's
	// roots (the policy file's ca_file, --ca-file), set only with a
	// network grant. The sandbox trusts them (its CA bundle, with the
	// host's and the interception CA: docs/EGRESS.md) and so does the
	// egress proxy for the upstreams it verifies.
	CACerts []byte `json:"ca_certs,omitempty"`
	// ReadPaths are host paths (absolute, cleaned, symlinks resolved) the
	// operator granted read-only (--allow-read, policy "read"). Backends
	// expose each read-only at the same path inside the sandbox; a backend
	// that cannot must refuse with errdefs.Unsupported, never drop them.
	ReadPaths []string `json:"read_paths,omitempty"`
	// Limits bounds every call.
	Limits Limits `json:"limits"`
	// Mode is single-use (default when empty) or session.
	Mode Mode `json:"mode,omitempty"`
	// OneShot says the sandbox serves one single-use call and is then
	// closed (the CLI's run): a backend may skip what pays off only across
	// calls (the linux backend starts a jail for the call instead of a
	// zygote and a pre-forked child). Not a security setting: every
	// single-use call gets fresh interpreter state behind the same walls
	// either way.
	OneShot bool `json:"one_shot,omitempty"`
	// Require lists the guarantees the backend must enforce or refuse.
	Require []Feature `json:"require,omitempty"`
	// Warm lets the backend import the skill once, in a process that serves
	// several calls (a linux zygote), instead of in each call's own
	// process: faster, but calls of this skill may share state that its
	// import created. Only an explicit operator opt-in for this one skill
	// sets it (serve --warm ID, policy "warm: true"); results say so.
	Warm bool `json:"warm,omitempty"`
	// TrustedEnvironments are the operator's trusted_environments: the
	// interpreters' environment keys (as backends list them), the digests
	// of per-skill environments (Environment.Digest) and the image digests
	// whose code a backend may import in a process that serves several
	// calls. Code from any other environment runs only in a call's own
	// process.
	TrustedEnvironments []string `json:"trusted_environments,omitempty"`
	// Container, when not nil, runs the skill in the root file system of
	// an OCI image (a manifest's execution: container) instead of with a
	// host interpreter. A backend that cannot refuses with
	// errdefs.Unavailable naming what is missing; it never runs the skill
	// otherwise.
	Container *Container `json:"container,omitempty"`
	// BestEffort lets a backend run with isolation layers the host lacks
	// (each missing layer is reported in Result.Warnings on every call).
	// Only an explicit operator opt-in sets it.
	BestEffort bool `json:"best_effort,omitempty"`
}

// Environment is a built per-skill Python environment: a virtual
// environment at Dir made from the interpreter Base.
type Environment struct {
	// Key is the environment's key ("sha256:..."), as `skillbox env list`
	// names it: a digest of what it is built from.
	Key string `json:"key"`
	// Digest is a digest of what it holds ("sha256:...": its key and the
	// distributions installed, with their archives' hashes), as
	// trusted_environments names it: a rebuild of the same key that
	// installed anything else has another Digest and is untrusted.
	Digest string `json:"digest"`
	// Dir is the environment's folder, shown read-only at the same path.
	Dir string `json:"dir"`
	// Base is the real executable of the interpreter it was made from.
	Base string `json:"base"`
}

// EnvironmentRunner is implemented by a Driver that runs a skill on its
// own environment (Spec.Environment) rather than checking its
// requirements against the Driver's interpreter.
type EnvironmentRunner interface {
	// RunsEnvironments reports whether it does.
	RunsEnvironments() bool
	// EnvironmentBase returns the interpreter (its real executable and
	// version) the environment of a skill opened with spec must be made
	// from.
	EnvironmentBase(ctx context.Context, spec Spec) (executable, version string, err error)
}

// EnvironmentTargeter is implemented by an EnvironmentRunner whose
// interpreter cannot build environments itself (Pyodide, in WebAssembly):
// EnvironmentBase is then the host interpreter that runs pip, and the
// environment is built for the interpreter EnvironmentTarget names — a
// folder of pure-Python packages for its Python version
// (Environment.Dir/site-packages), which the backend loads.
type EnvironmentTargeter interface {
	// EnvironmentTarget returns the interpreter's name for messages
	// ("Pyodide 0.28.0") and its Python version ("3.13.2").
	EnvironmentTarget(ctx context.Context) (name, pythonVersion string, err error)
}

// Container is the image a containerised skill runs in (the manifest's
// container block, skill.Container).
type Container struct {
	// Image is the reference as the manifest wrote it: a registry
	// reference, or oci-archive:PATH, docker-archive:PATH or oci:DIR with
	// PATH relative to BundleDir.
	Image string `json:"image,omitempty"`
	// Dockerfile is the bundle-relative path of a Dockerfile to build.
	Dockerfile string `json:"dockerfile,omitempty"`
	// Python is the interpreter's absolute path inside the image; empty
	// means python3 on the image's PATH.
	Python string `json:"python,omitempty"`
	// Digest, when set, is the image digest ("sha256:...") the operator
	// trusted or locked: a backend runs that image only, and refuses
	// (errdefs.Denied) when Image now names another.
	Digest string `json:"digest,omitempty"`
	// Build lets the backend build the image from Dockerfile on the call,
	// when none is built for this bundle digest yet, as `skillbox image
	// build SKILL` would (the operator's --build-images or the policy
	// file's build_images). Otherwise such a call is errdefs.Unavailable.
	Build bool `json:"build,omitempty"`
	// BuildNetwork are the hosts the build's RUN steps may reach, through
	// the egress proxy only (the policy file's skills.ID.build_net); empty:
	// the build has no network. Only with Build.
	BuildNetwork []HostPort `json:"build_network,omitempty"`
}

// Request is one call into a sandbox.
type Request struct {
	// Params is the JSON object given to execute(params); already validated.
	Params json.RawMessage
	// Config is given to the skill's constructor as BaseSkill.config (and is
	// what credential(name) reads); it holds only granted values, and the
	// placeholder (never the value) of each bound secret.
	//
	// The call's egress audit sink is not here but in the context given to
	// Call: egress.AuditFrom(ctx).
	Config map[string]string
}

// Usage is what one call consumed, as far as the backend can tell.
type Usage struct {
	// MaxRSS is the peak resident memory in bytes during the call, if
	// known: on the linux backend the jail's (its cgroup's) peak from just
	// before the call's process was forked or, in a session, from the
	// call's start; a call in a jail of its own (exec cold or prestart, an
	// untrusted image) reports that jail's whole peak, its start included.
	MaxRSS int64 `json:"max_rss,omitempty"`
	// CPUTime is user+system CPU time, if known.
	CPUTime time.Duration `json:"cpu_time_ns,omitempty"`
}

// Result is the outcome of a call that ran to completion. A skill that raised
// is an error (errdefs.SkillError), not a Result.
type Result struct {
	// Value is the JSON value execute() returned.
	Value json.RawMessage
	// Stdout and Stderr are what the skill printed, capped at Limits.Stdio.
	Stdout, Stderr []byte
	// StdoutTruncated and StderrTruncated say a cap was hit.
	StdoutTruncated, StderrTruncated bool
	// Usage is what the call consumed.
	Usage Usage
	// Warnings are notes the caller must see, such as each isolation layer a
	// best-effort run went without.
	Warnings []string
	// Warm says the call ran in a process forked from one that had
	// imported the skill (Spec.Warm, honoured): it may share state that
	// the import created. A backend that ignores Spec.Warm leaves it false.
	Warm bool
}

// ResolveList lists Resolve as sorted "HOST=IP" strings, as the audit log
// and lockfiles record them.
func (s *Spec) ResolveList() []string {
	var out []string
	for host, addrs := range s.Resolve {
		for _, a := range addrs {
			out = append(out, host+"="+a.String())
		}
	}
	slices.Sort(out)
	return out
}

// Ref is how a command line names the skill (SkillRef, else SkillID).
func (s *Spec) Ref() string {
	if s.SkillRef != "" {
		return s.SkillRef
	}
	return s.SkillID
}
