package skillbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/skillbox-dev/skillbox/audit"
	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/examples"
	"github.com/skillbox-dev/skillbox/internal/bundled"
	"github.com/skillbox-dev/skillbox/internal/egress"
	"github.com/skillbox-dev/skillbox/internal/schema"
	"github.com/skillbox-dev/skillbox/internal/skillenv"
	"github.com/skillbox-dev/skillbox/internal/userdir"
	"github.com/skillbox-dev/skillbox/internal/worker"
	"github.com/skillbox-dev/skillbox/policy"
	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/skill"
)

// Runtime loads skills and runs calls. It is safe for concurrent use and
// keeps prepared sandboxes (for example zygote pools) between calls of the
// same skill under the same grant; Close releases them.
//
// Lifecycle of a cached sandbox: the first call that needs it starts its
// opening, detached from that caller (every caller waits for it on its own
// context, and an opening outlives a caller that gives up); it serves every
// later call of the same Spec; once the skill's folder no longer has the
// digest it was opened for (a watcher checks each skill's folder about
// once a second: file sizes and times, then a digest only if they
// changed), it is evicted and closed as soon as no call uses it. Close
// stops openings in progress, waits for them and closes every sandbox.
type Runtime struct {
	cfg      config
	resolver *skill.Resolver
	// refs are the resolutions calls reuse while nothing they read changed.
	refs *refCache
	// backends are the drivers, built with the policy file's backends
	// section (the registry's shared ones for backends it does not name).
	backends *sandbox.Backends

	// placeholders keeps the placeholder of each bound secret stable, so
	// that the same grant maps to the same Spec and cached sandbox.
	placeholders policy.Placeholders

	// openCtx is the parent of every sandbox opening: no caller's, and
	// cancelled by Close.
	openCtx    context.Context
	cancelOpen context.CancelFunc
	// opening counts the openings in progress (cached sandboxes and
	// sessions), which Close waits for; background closes counts the
	// sandboxes being closed after eviction.
	opening, closing sync.WaitGroup

	mu         sync.Mutex
	sandboxes  map[string]*openSandbox     // current ones, by sandboxKey
	live       map[*openSandbox]struct{}   // every one not yet closed, evicted ones too
	validators map[string]*cachedValidator // by bundle digest
	watches    map[string]*skillWatch      // by skill folder
	sessions   map[*Session]struct{}       // open sessions
	watching   bool                        // the watcher runs
	stopWatch  chan struct{}               // closed by Close
	closed     bool

	// sealed are the sealed copies (skill.Seal) this Runtime checked
	// against the skill a call resolved; a call of the same resolution
	// (refCache gives the same *skill.Skill while nothing it read
	// changed) does not read the copy's files again (seal).
	sealed map[*skill.Skill]string

	// envs are the per-skill environments calls use (environment.go).
	envs envState
}

// openSandbox is a cached sandbox: opened once, shared by the calls of one
// (backend, Spec).
type openSandbox struct {
	key    string
	dir    string // the skill folder the Spec was decided from
	digest string // the bundle digest it runs
	// done is closed when the opening finished; sb, backend, caps and err
	// are set before and never change after.
	done    chan struct{}
	sb      sandbox.Sandbox
	backend string
	caps    sandbox.Capabilities
	err     error
	// Guarded by Runtime.mu:
	refs    int  // calls using it or waiting for it
	evicted bool // no longer the skill's current digest: close at refs 0
	closing bool // taken to be closed (by eviction, Close or a late opening)
}

// cachedValidator is a compiled parameter schema and the folder it came
// from, so that it is dropped with the digest it belongs to.
type cachedValidator struct {
	v   *schema.Validator
	dir string
}

type config struct {
	roots     []skill.Root
	rootsSet  bool
	backend   string
	lookupEnv policy.LookupEnv
	audit     *audit.Log
	logger    *slog.Logger
	cacheDir  string
	policy    *policy.Policy
	trust     policy.Trust
	secrets   Secrets
	// rootWarnings are the problems skill.FindRoots found with the roots.
	rootWarnings []string
	// envProgress and envSdists: WithEnvProgress, WithEnvSdists.
	envProgress func(string)
	envSdists   bool
	envPolicy   *policy.Policy
	// envBuilder builds environments (nil: jailbuild's, on the real
	// host); tests give one that sees another host (export_test.go).
	envBuilder skillenv.Builder
	// imageProgress: WithImageProgress.
	imageProgress func(string)
}

// Option configures a Runtime.
type Option func(*config)

// WithRoots replaces the default skill roots (those skill.FindRoots builds
// as Skillware does: .skillware.yaml, SKILLWARE_SKILL_PATH, ./skills and its
// parents, the bundled examples).
func WithRoots(roots ...skill.Root) Option {
	return func(c *config) { c.roots, c.rootsSet, c.rootWarnings = roots, true, nil }
}

// WithFoundRoots uses the roots skill.FindRoots found (those that exist),
// and reports its warnings (missing or wrong-level roots) on every skill the
// Runtime resolves, in Result.Warnings and in not-found errors.
func WithFoundRoots(f *skill.FoundRoots) Option {
	return func(c *config) {
		c.roots, c.rootsSet, c.rootWarnings = f.Roots(), true, append([]string(nil), f.Warnings...)
	}
}

// WithBackend sets the default backend ("auto" when unset).
func WithBackend(name string) Option { return func(c *config) { c.backend = name } }

// WithLookupEnv sets where granted environment variables get their values
// (os.LookupEnv by default).
func WithLookupEnv(f func(string) (string, bool)) Option {
	return func(c *config) { c.lookupEnv = f }
}

// WithPolicy sets the operator's policy file: standing per-skill grants and
// ceilings for every call (none by default), and the settings of each
// backend it names under backends (every backend's defaults otherwise).
func WithPolicy(p *policy.Policy) Option { return func(c *config) { c.policy = p } }

// WithTrust sets what vouches for external skills: any policy.Trust (the
// CLI's is its trust store, $XDG_CONFIG_HOME/skillbox/trust.json, read again
// whenever the file changes). Nothing by default: external skills need
// CallOptions.TrustRemoteCode. It is asked on every call (once, at open, for
// a Session); a policy.TrustSnapshot is snapshotted once per call, so that
// the gate and its image and environment pins agree.
func WithTrust(t policy.Trust) Option { return func(c *config) { c.trust = t } }

// Secrets looks up the values of granted variables by name.
type Secrets interface {
	// Lookup returns the value of name and whether it has one. An error
	// means the source is broken (an unreadable file); the call stops
	// rather than run without the value.
	Lookup(name string) (value string, ok bool, err error)
}

// WithSecrets sets where granted variables get their values; it replaces
// WithLookupEnv. A provider error stops the call before any code runs.
func WithSecrets(p Secrets) Option { return func(c *config) { c.secrets = p } }

// WithAudit sets the audit log (none by default for the Go API; the CLI
// opens the default log file).
func WithAudit(l *audit.Log) Option { return func(c *config) { c.audit = l } }

// WithLogger sets a structured logger for operational messages.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithCacheDir sets skillbox's cache folder, where the bundled skills are
// materialised and sealed bundles are kept (see skill.Seal); by default
// $XDG_CACHE_HOME/skillbox or ~/.cache/skillbox (internal/userdir).
func WithCacheDir(dir string) Option { return func(c *config) { c.cacheDir = dir } }

// withCacheDir gives every backend's config the Runtime's cache folder.
// With a folder other than the user's default, every registered backend
// gets a config (and so a driver of this Runtime's own, not the shared
// default one, whose caches are the user's).
func withCacheDir(configs map[string]sandbox.Config, dir string) map[string]sandbox.Config {
	if dir == "" {
		return configs
	}
	out := make(map[string]sandbox.Config, len(configs))
	for name, c := range configs {
		c.CacheDir = dir
		out[name] = c
	}
	if def, err := userdir.Cache(os.Getenv); err == nil && filepath.Clean(def) == filepath.Clean(dir) {
		return out
	}
	for _, r := range sandbox.List() {
		if _, ok := out[r.Name]; !ok {
			out[r.Name] = sandbox.Config{Backend: r.Name, CacheDir: dir}
		}
	}
	return out
}

// New returns a Runtime.
func New(opts ...Option) (*Runtime, error) {
	cfg := config{backend: sandbox.Auto, lookupEnv: os.LookupEnv}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	var backendConfigs map[string]sandbox.Config
	if cfg.policy != nil {
		backendConfigs = cfg.policy.Backends
	}
	backends, err := sandbox.NewBackends(withCacheDir(backendConfigs, cfg.cacheDir))
	if err != nil {
		return nil, err
	}
	if !cfg.rootsSet {
		found, err := defaultRoots(cfg.cacheDir)
		if err != nil {
			return nil, err
		}
		cfg.roots, cfg.rootWarnings = found.Roots(), found.Warnings
	}
	r := &Runtime{
		cfg:        cfg,
		resolver:   &skill.Resolver{Roots: cfg.roots, Warnings: cfg.rootWarnings},
		backends:   backends,
		sandboxes:  map[string]*openSandbox{},
		live:       map[*openSandbox]struct{}{},
		validators: map[string]*cachedValidator{},
		sealed:     map[*skill.Skill]string{},
		watches:    map[string]*skillWatch{},
		sessions:   map[*Session]struct{}{},
		stopWatch:  make(chan struct{}),
	}
	r.refs = newRefCache(cfg.roots, r.resolver.Resolve)
	r.openCtx, r.cancelOpen = context.WithCancel(context.Background())
	return r, nil
}

// BundledRoot materialises the embedded example skills under cacheDir (the
// user cache directory when empty) and returns the folder.
func BundledRoot(cacheDir string) (string, error) {
	if cacheDir == "" {
		var err error
		if cacheDir, err = userdir.Cache(os.Getenv); err != nil {
			return "", err
		}
	}
	sub, err := fs.Sub(examples.Skills, "skills")
	if err != nil {
		return "", err
	}
	return bundled.Materialize(sub, cacheDir)
}

func defaultRoots(cacheDir string) (*skill.FoundRoots, error) {
	root, err := BundledRoot(cacheDir)
	if err != nil {
		return nil, errdefs.Wrap(errdefs.Internal, err, "materialise bundled skills")
	}
	cwd, err := os.Getwd()
	if err != nil {
		return nil, errdefs.Wrap(errdefs.Internal, err, "working directory")
	}
	return skill.FindRoots(skill.RootsEnv{Getenv: os.Getenv, Cwd: cwd, Bundled: root})
}

// Roots returns the ordered skill roots.
func (r *Runtime) Roots() []skill.Root { return r.cfg.roots }

// RootWarnings returns the problems found with the default roots (none when
// they were given with WithRoots): missing SKILLWARE_SKILL_PATH or
// .skillware.yaml entries, or entries naming a skill or category folder
// instead of a root. Resolve adds them to every skill's Warnings.
func (r *Runtime) RootWarnings() []string { return r.cfg.rootWarnings }

// Resolve finds and loads a skill by id (category/name) or folder path.
func (r *Runtime) Resolve(ref string) (*skill.Skill, error) { return r.resolver.Resolve(ref) }

// List returns every skill in every root, sorted by id, and an error for
// each bundle that could not be loaded.
func (r *Runtime) List() ([]*skill.Skill, []error) { return r.resolver.List() }

// CallOptions are the operator's grants and choices for one call.
type CallOptions struct {
	// Backend overrides the Runtime's default backend ("auto", "linux", ...).
	Backend string
	// TrustRemoteCode lets a skill from an external root run.
	TrustRemoteCode bool
	// Timeout and Memory override the manifest's limits; the backend must
	// enforce them or refuse.
	Timeout time.Duration
	Memory  int64
	// AllowNet grants HOST or HOST:PORT destinations the skill requests
	// (see GrantUndeclared).
	AllowNet []string
	// AllowEnv grants variables the skill requests (see GrantUndeclared).
	AllowEnv []string
	// AllowRead grants absolute host paths, read-only.
	AllowRead []string
	// GrantUndeclared says AllowNet, AllowEnv and AllowRead are meant for
	// this one skill (skillbox run SKILL): a skill whose manifest has no
	// permissions block — an unmodified Skillware manifest, which cannot
	// request anything — gets them as they are, and the audit record says
	// so (grants.operator_only). A manifest with a block still gets only
	// what it requests of them. Leave it false where the same options
	// serve many skills (skillbox serve): a skill without a block then
	// gets network access and variables beyond its env_vars only from its
	// entry in the policy file (policy.Grants.GrantUndeclared).
	GrantUndeclared bool
	// EgressResolve maps granted host names to fixed addresses, HOST=IP
	// (--egress-resolve); each mapping also grants its address.
	EgressResolve []string
	// Lock, when set, refuses a call that drifts from the lockfile (run
	// --locked), and the limits it pinned for the skill are the call's
	// defaults.
	Lock *Lock
	// Mode is single-use (default) or session.
	Mode sandbox.Mode
	// OneShot says the caller makes this one call and closes the Runtime
	// (the CLI's run): the backend prepares nothing for later calls (on
	// linux, a new jail runs the call; no zygote, no pre-forked child).
	// The walls and the fresh interpreter state are the same; later calls
	// with it set still work, each as costly as the first.
	OneShot bool
	// BestEffort runs even if the host lacks isolation layers; each missing
	// layer is reported in Result.Warnings.
	BestEffort bool
	// Warm lists the ids of skills whose calls may run warm (serve --warm
	// ID): the backend may import such a skill once, in a process that
	// serves several of its calls, so calls of this skill may share state
	// that its import created. The policy file's "warm: true" in a skill's
	// entry does the same. Never a default; other skills are unaffected.
	Warm []string
	// BuildImages lets a call of a container skill whose image is built
	// from its Dockerfile build it when none is built for its bundle
	// digest, as `skillbox image build SKILL` does (progress through
	// WithImageProgress), then run; without it (and without the policy
	// file's build_images) such a call is unavailable, naming the command.
	// An operator's setting: serve sets it from its own flag only.
	BuildImages bool
}

// SkillInfo identifies the skill a call ran.
type SkillInfo struct {
	ID      string `json:"id"`
	Version string `json:"version"`
	Digest  string `json:"digest"`
	Tier    string `json:"tier"`
}

// Result is a successful call.
type Result struct {
	// Value is the JSON value the skill returned.
	Value json.RawMessage
	// Skill identifies what ran.
	Skill SkillInfo
	// Backend names the backend that ran it.
	Backend string
	// Duration is the call's wall time, policy to result.
	Duration time.Duration
	// Stdout and Stderr are what the skill printed (capped).
	Stdout, Stderr []byte
	// Warnings must be shown to the operator.
	Warnings []string
	// Warm says the call ran warm (CallOptions.Warm, policy "warm: true"):
	// calls of this skill may share state that its import created.
	Warm bool
}

// Call runs one call of the skill ref with params (a JSON object; nil means
// {}). Errors carry an errdefs kind; a skill that raised is *errdefs.SkillError.
// A failed call's error carries the warnings a Result would have had
// (errdefs.Warnings): they often say why it failed; and what the skill
// printed before it failed, where the backend kept it (errdefs.Output).
// Every call is single-use: use OpenSession for calls that share a worker.
//
// A call whose ctx is cancelled before it finished fails with
// errdefs.Canceled (whatever the killed worker left behind).
func (r *Runtime) Call(ctx context.Context, ref string, params json.RawMessage, opts CallOptions) (*Result, error) {
	return r.audited(ctx, ref, params, func(rec *audit.Record) (*Result, error) {
		if opts.Mode == sandbox.ModeSession {
			return nil, errdefs.New(errdefs.Invalid, "session mode needs Runtime.OpenSession, so that one caller owns the worker")
		}
		p, err := r.prepare(ref, opts, rec)
		if err != nil {
			return nil, err
		}
		if err := validate(p.validator, params, rec); err != nil {
			return nil, paramsError{err}
		}
		if err := r.environment(ctx, p); err != nil {
			return nil, err
		}
		osb, err := r.sandboxFor(ctx, p)
		if err != nil {
			return nil, err
		}
		defer r.release(osb)
		return p.run(ctx, osb, params, rec)
	})
}

// validate checks params against the skill's schema and hashes them for
// the call's audit record (and its egress records), which must hold the
// hash before the call runs. Large params are hashed beside the check: for
// a megabyte each takes a large part of a millisecond.
func validate(v *schema.Validator, params json.RawMessage, rec *audit.Record) error {
	if len(params) == 0 {
		params = json.RawMessage(`{}`) // what audited hashes, and Validate reads
	}
	if len(params) <= 64<<10 {
		rec.ParamsSHA256 = audit.HashParams(params)
		return v.Validate(params)
	}
	sum := make(chan string, 1)
	go func() { sum <- audit.HashParams(params) }()
	err := v.Validate(params)
	rec.ParamsSHA256 = <-sum
	return err
}

// paramsError marks an error of parameter validation: its message may
// quote the parameters, so the audit log does not keep it.
type paramsError struct{ error }

func (e paramsError) Unwrap() error { return e.error }

// auditMessage is what the audit log records of a failed call's error: its
// message, except where that may quote the call's parameters, which the
// log never holds (only their hash) — a parameter validation error, and a
// skill's exception, whose message is the skill's to fill. The log cuts a
// long one (audit.Log.Write), as a skill's own text can reach it.
func auditMessage(err error) string {
	var pe paramsError
	if errors.As(err, &pe) {
		return "params do not match the skill's parameters schema (the details are not logged: they may quote the parameters)"
	}
	var se *errdefs.SkillError
	if errors.As(err, &se) {
		return "skill failed: " + se.Type + " (its message is not logged: it may quote the parameters)"
	}
	return err.Error()
}

// audited runs fn and writes its audit record, whatever the outcome.
func (r *Runtime) audited(ctx context.Context, ref string, params json.RawMessage, fn func(*audit.Record) (*Result, error)) (*Result, error) {
	start := time.Now()
	if len(params) == 0 {
		params = json.RawMessage(`{}`)
	}
	rec := audit.Record{Event: audit.EventCall, Skill: ref}
	res, err := fn(&rec)
	err = callError(ctx, err)
	if rec.ParamsSHA256 == "" { // fn failed before validate
		rec.ParamsSHA256 = audit.HashParams(params)
	}
	rec.DurationMS = time.Since(start).Milliseconds()
	if err != nil {
		rec.Outcome, rec.ErrorKind, rec.Error = "error", string(errdefs.KindOf(err)), auditMessage(err)
		var denied *errdefs.DeniedError
		if errors.As(err, &denied) {
			rec.Event = audit.EventDenied
		}
	} else {
		rec.Outcome = "ok"
		res.Duration = time.Since(start)
	}
	if aerr := r.cfg.audit.Write(rec); aerr != nil {
		r.cfg.logger.Error("audit write failed", "err", aerr)
		if err == nil {
			// The call did run, but the operator must know the log is broken.
			res.Warnings = append(res.Warnings, "audit log: "+aerr.Error())
		} else {
			rec.Warnings = append(slices.Clone(rec.Warnings), "audit log: "+aerr.Error())
		}
	}
	// A failed call's warnings often say why it failed (a variable or a
	// destination that was not granted): they go with its error.
	return res, errdefs.WithWarnings(err, rec.Warnings)
}

// callError classifies the error of a call made under ctx. A call whose
// caller cancelled it is errdefs.Canceled, unless it had already failed for
// a reason of its own (a denial, bad input, its timeout); a cancellation
// that is not the caller's (the sandbox was closed under the call) is
// errdefs.Unavailable, not the caller's Canceled.
func callError(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	k := errdefs.KindOf(err)
	if errors.Is(ctx.Err(), context.Canceled) {
		switch k {
		case errdefs.Canceled, errdefs.Denied, errdefs.Invalid, errdefs.NotFound, errdefs.Timeout:
			return err
		}
		return errdefs.Wrap(errdefs.Canceled, err, "call cancelled")
	}
	if k == errdefs.Canceled {
		return errdefs.Wrap(errdefs.Unavailable, err, "call stopped: its sandbox was closed")
	}
	return err
}

// prepared is a skill resolved, loaded and checked by policy: everything
// before the backend.
type prepared struct {
	skill     *skill.Skill
	decision  *policy.Decision
	validator *schema.Validator
	backend   string
	warnings  []string
	// grants are what the call was decided with (for the hints of
	// warnings about egress that was not granted).
	grants policy.Grants
	// audit and logger receive the egress records of the calls.
	audit  *audit.Log
	logger *slog.Logger
	// lock is the call's lockfile (CallOptions.Lock), checked again once
	// the skill's environment is known.
	lock *Lock
}

func (r *Runtime) prepare(ref string, opts CallOptions, rec *audit.Record) (*prepared, error) {
	get := r.refs.get
	if opts.OneShot {
		get = r.Resolve // one call: nothing to reuse
	}
	s, err := get(ref)
	if err != nil {
		return nil, err
	}
	m := s.Bundle.Manifest
	rec.Skill, rec.Version, rec.Digest, rec.Tier = s.ID, m.Version, s.Digest, string(s.Tier)
	p := &prepared{skill: s, backend: opts.Backend, warnings: append([]string(nil), s.Warnings...), audit: r.cfg.audit, logger: r.cfg.logger}
	rec.Warnings = p.warnings
	if p.backend == "" {
		p.backend = r.cfg.backend
	}
	if err := r.cfg.policy.CheckBackend(p.backend); err != nil {
		return nil, err
	}
	lookup, lookupErr := r.lookup()
	grants := policy.Grants{
		TrustRemoteCode: opts.TrustRemoteCode,
		Net:             opts.AllowNet,
		Env:             opts.AllowEnv,
		Read:            opts.AllowRead,
		GrantUndeclared: opts.GrantUndeclared,
		Resolve:         opts.EgressResolve,
		Placeholders:    &r.placeholders,
		Timeout:         opts.Timeout,
		Memory:          opts.Memory,
		Mode:            opts.Mode,
		BestEffort:      opts.BestEffort,
		Warm:            slices.Contains(opts.Warm, s.ID),
		BuildImages:     opts.BuildImages,
		Policy:          r.cfg.policy,
		Trust:           r.cfg.trust,
	}
	if opts.Lock != nil {
		// The limits the lock pinned are the call's defaults (one
		// decision: policy.Grants.LockedTimeout), so that 'lock --timeout
		// 5s' then a locked call runs with 5s, not the manifest's 30s.
		// Limits given explicitly stay, and the check below refuses them
		// if they exceed the lock's.
		e, ok, warning := opts.Lock.entry(s, ref)
		if warning != "" {
			p.warnings = append(p.warnings, warning)
		}
		if ok {
			grants.LockedTimeout, grants.LockedMemory = e.Grants.Limits()
		}
	}
	p.grants = grants
	p.decision, err = policy.Decide(s, grants, lookup)
	if *lookupErr != nil {
		return nil, *lookupErr
	}
	if err != nil {
		return nil, err
	}
	rec.Trust = p.decision.TrustedBy
	if opts.Lock != nil {
		if err := opts.Lock.check(s, p.decision); err != nil {
			return nil, err
		}
		p.lock = opts.Lock
	}
	// The backend runs the sealed copy whose digest was just checked, not
	// the skill's folder, which may change at any time.
	if p.decision.Spec.BundleDir, err = r.seal(s); err != nil {
		return nil, err
	}
	p.decision.Spec.OneShot = opts.OneShot && opts.Mode != sandbox.ModeSession
	p.warnings = append(p.warnings, p.decision.Warnings...)
	rec.Warnings = p.warnings
	r.watch(s)
	if p.validator, err = r.validator(s); err != nil {
		return nil, err
	}
	return p, nil
}

// maxSealed bounds the sealed copies a Runtime remembers; past it, it
// starts over.
const maxSealed = 4096

// seal returns the sealed copy of s's bundle (skill.Seal) in the cache
// folder's "bundles". A copy already checked against this very s (the
// refCache hands the same *skill.Skill to every call while nothing of the
// skill changed) is only looked up (one lstat), not read again: Seal reads
// and hashes the files Load parsed, which a served call would otherwise
// pay every time (issue 17).
func (r *Runtime) seal(s *skill.Skill) (string, error) {
	r.mu.Lock()
	final, ok := r.sealed[s]
	r.mu.Unlock()
	if ok {
		if fi, err := os.Lstat(final); err == nil && fi.IsDir() {
			return final, nil
		}
	}
	dir := r.cfg.cacheDir
	if dir == "" {
		var err error
		if dir, err = userdir.Cache(os.Getenv); err != nil {
			return "", errdefs.Wrap(errdefs.Unavailable, err, "sealed bundles")
		}
	}
	final, err := skill.Seal(s, filepath.Join(dir, "bundles"))
	if err != nil {
		return "", err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		if len(r.sealed) >= maxSealed {
			clear(r.sealed)
		}
		r.sealed[s] = final
	}
	return final, nil
}

// lookup returns the function policy uses for variable values, and where
// it records the first provider error.
func (r *Runtime) lookup() (policy.LookupEnv, *error) {
	var first error
	if r.cfg.secrets == nil {
		return r.cfg.lookupEnv, &first
	}
	return func(name string) (string, bool) {
		v, ok, err := r.cfg.secrets.Lookup(name)
		if err != nil {
			if first == nil {
				first = err
			}
			return "", false
		}
		return v, ok
	}, &first
}

// run sends one call to an open sandbox and fills the audit record.
func (p *prepared) run(ctx context.Context, osb *openSandbox, params json.RawMessage, rec *audit.Record) (*Result, error) {
	spec := p.decision.Spec
	// The timeout every backend applies: a call without one set ran under
	// sandbox.DefaultTimeout, never without a limit ("0s").
	rec.Grants = &audit.Grants{Env: p.decision.EnvNames, Read: p.decision.ReadPaths, Timeout: spec.Limits.WithDefaults().Timeout.String(), Memory: spec.Limits.Memory}
	for _, hp := range spec.Network {
		rec.Grants.Network = append(rec.Grants.Network, hp.String())
	}
	rec.Grants.Secrets = p.decision.SecretNames
	rec.Grants.Resolve = spec.ResolveList()
	rec.Grants.OperatorOnly = p.decision.OperatorOnly
	rec.Backend = osb.backend
	rec.Warm = spec.Warm
	warnings := slices.Clone(p.warnings)
	if !osb.caps.Isolating {
		warnings = append(warnings, fmt.Sprintf("backend %s isolates nothing: the skill can read your files and reach the network", osb.backend))
	}
	if len(params) == 0 {
		params = json.RawMessage(`{}`)
	}
	// Egress the skill attempted and was not granted becomes warnings:
	// the proxy's denials, or, in a sandbox without network (no proxy),
	// the harness's hints.
	denied := &deniedEgress{}
	ctx = egress.WithAudit(ctx, p.egressAudit(*rec, denied))
	if len(spec.Network) == 0 && osb.caps.Has(sandbox.FeatureNoNetwork) {
		ctx = worker.WithNetAttempts(ctx, denied.attempts)
	}
	out, err := osb.sb.Call(ctx, sandbox.Request{Params: params, Config: p.decision.Config})
	if out != nil {
		warnings = append(warnings, out.Warnings...)
		if err == nil { // a failed call's Result holds only its output
			rec.Warm = out.Warm // what the backend did, not only what was asked
		}
	}
	warnings = append(warnings, denied.warnings(func(dest string) string {
		return policy.NetGrantHint(p.skill, p.grants, dest)
	})...)
	rec.Warnings = warnings
	if err != nil {
		// What the skill printed before it failed goes with the error.
		if out != nil {
			err = errdefs.WithOutput(err, out.Stdout, out.Stderr)
		}
		return nil, err
	}
	rec.MaxRSS, rec.CPUTimeMS = out.Usage.MaxRSS, out.Usage.CPUTime.Milliseconds()
	m := p.skill.Bundle.Manifest
	return &Result{
		Value:    out.Value,
		Skill:    SkillInfo{ID: p.skill.ID, Version: m.Version, Digest: p.skill.Digest, Tier: string(p.skill.Tier)},
		Backend:  osb.backend,
		Stdout:   out.Stdout,
		Stderr:   out.Stderr,
		Warnings: warnings,
		Warm:     out.Warm,
	}, nil
}

// egressAudit returns the sink for the egress events of one call: each
// becomes an audit record (audit.EventEgress) carrying the call's skill,
// version, digest, tier, backend and params hash, and each denial goes to
// denied too (the call's warnings). It may be called concurrently and
// after the call returned.
func (p *prepared) egressAudit(call audit.Record, denied *deniedEgress) func(egress.Event) {
	return func(ev egress.Event) {
		denied.event(ev)
		rec := ev.Record()
		rec.Skill, rec.Version, rec.Digest, rec.Tier = call.Skill, call.Version, call.Digest, call.Tier
		rec.Backend, rec.ParamsSHA256 = call.Backend, call.ParamsSHA256
		if err := p.audit.Write(rec); err != nil && p.logger != nil {
			p.logger.Error("audit write failed", "err", err)
		}
	}
}

// sandboxAudit returns the sink for the egress events of a sandbox of this
// skill on backend that no call caused: those made while it starts (a warm
// skill's import, a zygote's start) and between calls. Each becomes an
// audit record naming the skill, version, digest, tier and backend, marked
// outside_call, without a params hash. It is put in the context given to
// Driver.Open (egress.AuditFrom), and stays valid for the sandbox's life.
func (p *prepared) sandboxAudit(backend string) func(egress.Event) {
	s, m := p.skill, p.skill.Bundle.Manifest
	return func(ev egress.Event) {
		rec := ev.Record()
		rec.Skill, rec.Version, rec.Digest, rec.Tier = s.ID, m.Version, s.Digest, string(s.Tier)
		rec.Backend = backend
		rec.Egress.OutsideCall = true
		if err := p.audit.Write(rec); err != nil && p.logger != nil {
			p.logger.Error("audit write failed", "err", err)
		}
	}
}

// Session runs many calls of one skill on one worker, so module state
// persists between them (ModeSession). It belongs to one caller; Close it
// when the caller's session ends (Runtime.Close closes it too).
type Session struct {
	rt        *Runtime
	ref       string
	p         *prepared
	osb       *openSandbox
	closeOnce sync.Once
	closeErr  error
}

// OpenSession checks policy for ref once and starts a session worker.
// opts.Mode is ignored (always session).
func (r *Runtime) OpenSession(ctx context.Context, ref string, opts CallOptions) (*Session, error) {
	opts.Mode = sandbox.ModeSession
	var rec audit.Record
	p, err := r.prepare(ref, opts, &rec)
	if err != nil {
		rec.Event, rec.Skill, rec.Outcome = audit.EventDenied, ref, "error"
		rec.ErrorKind, rec.Error = string(errdefs.KindOf(err)), auditMessage(err)
		if errdefs.KindOf(err) == errdefs.Denied {
			r.cfg.audit.Write(rec)
		}
		return nil, err
	}
	if err := r.environment(ctx, p); err != nil {
		return nil, err
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, errRuntimeClosed()
	}
	r.opening.Add(1)
	r.mu.Unlock()
	defer r.opening.Done()
	// The session is its caller's: its start ends with the caller's ctx,
	// and with Close.
	octx, stop := context.WithCancel(ctx)
	defer stop()
	defer context.AfterFunc(r.openCtx, stop)()
	osb := &openSandbox{dir: p.skill.Dir, digest: p.skill.Digest, done: make(chan struct{})}
	osb.open(r.imageProgressCtx(octx), p, r.cfg.policy, r.backends)
	close(osb.done)
	if osb.err != nil {
		if r.openCtx.Err() != nil {
			return nil, errRuntimeClosed()
		}
		return nil, callError(ctx, osb.err)
	}
	s := &Session{rt: r, ref: ref, p: p, osb: osb}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		osb.sb.Close()
		return nil, errRuntimeClosed()
	}
	r.sessions[s] = struct{}{}
	r.mu.Unlock()
	return s, nil
}

// Call runs one call in the session.
func (s *Session) Call(ctx context.Context, params json.RawMessage) (*Result, error) {
	return s.rt.audited(ctx, s.ref, params, func(rec *audit.Record) (*Result, error) {
		m := s.p.skill.Bundle.Manifest
		rec.Skill, rec.Version, rec.Digest, rec.Tier = s.p.skill.ID, m.Version, s.p.skill.Digest, string(s.p.skill.Tier)
		if err := validate(s.p.validator, params, rec); err != nil {
			return nil, paramsError{err}
		}
		return s.p.run(ctx, s.osb, params, rec)
	})
}

// Close stops the session's worker. Calling it again does nothing.
func (s *Session) Close() error {
	s.closeOnce.Do(func() {
		s.rt.mu.Lock()
		delete(s.rt.sessions, s)
		s.rt.mu.Unlock()
		s.closeErr = s.osb.sb.Close()
	})
	return s.closeErr
}

// validator compiles the skill's parameter schema once per bundle digest.
// The watcher drops it when the skill's folder no longer has that digest.
func (r *Runtime) validator(s *skill.Skill) (*schema.Validator, error) {
	r.mu.Lock()
	cv, ok := r.validators[s.Digest]
	r.mu.Unlock()
	if ok {
		return cv.v, nil
	}
	v, err := schema.Compile(s.Bundle.Manifest.Parameters)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	if !r.closed {
		r.validators[s.Digest] = &cachedValidator{v: v, dir: s.Dir}
	}
	r.mu.Unlock()
	return v, nil
}

func errRuntimeClosed() error { return errdefs.New(errdefs.Unavailable, "runtime is closed") }

// openBound bounds the opening of a sandbox (which may start a jail, an
// interpreter and the skill's import) apart from any caller: it is no
// caller's, so it needs its own end.
var openBound = 2 * time.Minute

// sandboxFor returns the cached sandbox for p's Spec on p's backend,
// opening it once, and holds it for the caller until r.release. Specs are
// keyed by a hash of their JSON (which holds the digest and the whole
// effective grant, placeholders included) plus the granted values and the
// values of bound secrets, so a changed bundle, grant or secret never
// reuses a sandbox, and no value is kept in cleartext in the key.
//
// The opening belongs to no caller: it runs under the Runtime's own
// context (bounded by openBound, cancelled by Close), so a caller that
// gives up (ctx) stops waiting without failing the others waiting for the
// same sandbox; it ends with ctx's error.
func (r *Runtime) sandboxFor(ctx context.Context, p *prepared) (*openSandbox, error) {
	spec := p.decision.Spec
	key, err := sandboxKey(p.backend, spec)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, errRuntimeClosed()
	}
	osb, ok := r.sandboxes[key]
	if !ok {
		osb = &openSandbox{key: key, dir: p.skill.Dir, digest: spec.Digest, done: make(chan struct{})}
		r.sandboxes[key] = osb
		r.live[osb] = struct{}{}
		r.opening.Add(1)
		go r.openShared(osb, p)
	}
	osb.refs++
	r.mu.Unlock()
	select {
	case <-osb.done:
	case <-ctx.Done():
		r.release(osb)
		return nil, errdefs.Wrap(errdefs.KindOf(ctx.Err()), ctx.Err(), "waiting for the sandbox of "+p.skill.ID)
	}
	if osb.err != nil {
		r.release(osb)
		return nil, osb.err
	}
	return osb, nil
}

// openShared opens osb for every caller that will wait for it.
func (r *Runtime) openShared(osb *openSandbox, p *prepared) {
	defer r.opening.Done()
	ctx, cancel := context.WithTimeout(r.openCtx, openBound)
	defer cancel()
	osb.open(r.imageProgressCtx(ctx), p, r.cfg.policy, r.backends)
	if osb.err != nil && ctx.Err() != nil {
		if r.openCtx.Err() != nil {
			osb.err = errRuntimeClosed()
		} else if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			osb.err = errdefs.Wrap(errdefs.Timeout, osb.err, fmt.Sprintf("opening a sandbox for %s took longer than %v", p.skill.ID, openBound))
		}
	}
	r.mu.Lock()
	var toClose sandbox.Sandbox
	switch {
	case osb.err != nil:
		// Do not cache failures: the host or the grant may change.
		if r.sandboxes[osb.key] == osb {
			delete(r.sandboxes, osb.key)
		}
		delete(r.live, osb)
	case r.closed:
		// Close came while this was opening: the sandbox is nobody's.
		toClose = osb.take()
		osb.err = errRuntimeClosed()
		delete(r.live, osb)
	case osb.evicted && osb.refs == 0:
		toClose = osb.take()
		delete(r.live, osb)
	}
	close(osb.done)
	r.mu.Unlock()
	if toClose != nil {
		toClose.Close()
	}
}

// release ends a caller's hold on osb (sandboxFor); the last hold on an
// evicted sandbox closes it, in the background.
func (r *Runtime) release(osb *openSandbox) {
	r.mu.Lock()
	osb.refs--
	var toClose sandbox.Sandbox
	if osb.evicted && osb.refs == 0 && osb.opened() {
		toClose = osb.take()
		delete(r.live, osb)
	}
	r.mu.Unlock()
	r.closeLater(toClose)
}

// closeLater closes sb (if any) in the background; Close waits for it.
func (r *Runtime) closeLater(sb sandbox.Sandbox) {
	if sb == nil {
		return
	}
	r.closing.Add(1)
	go func() {
		defer r.closing.Done()
		sb.Close()
	}()
}

// evictLocked takes osb out of the cache: no new call gets it, and it is
// closed once no call uses it. It returns the sandbox to close now, if
// any. r.mu is held.
func (r *Runtime) evictLocked(osb *openSandbox) sandbox.Sandbox {
	if r.sandboxes[osb.key] == osb {
		delete(r.sandboxes, osb.key)
	}
	osb.evicted = true
	if osb.refs == 0 && osb.opened() {
		delete(r.live, osb)
		return osb.take()
	}
	return nil
}

// opened reports whether osb's opening has finished.
func (osb *openSandbox) opened() bool {
	select {
	case <-osb.done:
		return true
	default:
		return false
	}
}

// take returns osb's sandbox for closing, once. Runtime.mu is held.
func (osb *openSandbox) take() sandbox.Sandbox {
	if osb.sb == nil || osb.closing {
		return nil
	}
	osb.closing = true
	return osb.sb
}

// open chooses the backend among backends and opens the Spec on it,
// recording the outcome. The policy's backend ceilings are checked against the chosen
// backend, so that "auto" cannot pick one the policy forbids. The context
// given to Driver.Open carries the sink for the egress decisions no call
// causes (prepared.sandboxAudit).
func (osb *openSandbox) open(ctx context.Context, p *prepared, pol *policy.Policy, backends *sandbox.Backends) {
	spec := p.decision.Spec
	d, err := backends.Choose(ctx, p.backend, spec.BestEffort)
	if err != nil {
		osb.err = err
		return
	}
	if err := pol.CheckBackend(d.Name()); err != nil {
		osb.err = err
		return
	}
	osb.backend, osb.caps = d.Name(), d.Probe(ctx)
	osb.sb, osb.err = d.Open(egress.WithAudit(ctx, p.sandboxAudit(d.Name())), spec)
}

func sandboxKey(backend string, spec sandbox.Spec) (string, error) {
	// The manifest is the bundle's, which the digest names: encoding it
	// again (encoding/json re-checks a RawMessage) was most of the key's
	// cost on a served call's path.
	if spec.Digest != "" {
		spec.Manifest = nil
	}
	values := make([]string, len(spec.Secrets))
	for i, s := range spec.Secrets {
		values[i] = s.Value
	}
	b, err := json.Marshal(struct {
		Backend string
		Spec    sandbox.Spec
		Env     map[string]string
		Secrets []string
	}{backend, spec, spec.Env, values})
	if err != nil {
		return "", errdefs.Wrap(errdefs.Internal, err, "sandbox key")
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// Close releases every prepared sandbox and open session. Calls in
// flight fail; sandboxes still opening are stopped (their openings'
// context is cancelled) and closed once their Open returns, before Close
// returns. Calls after Close fail with errdefs.Unavailable.
func (r *Runtime) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		r.opening.Wait()
		r.closing.Wait()
		return nil
	}
	r.closed = true
	close(r.stopWatch)
	r.refs.close()
	r.cancelOpen()
	r.sandboxes = map[string]*openSandbox{}
	r.validators = map[string]*cachedValidator{}
	clear(r.sealed)
	sessions := r.sessions
	r.sessions = map[*Session]struct{}{}
	r.mu.Unlock()
	// An opening that finishes from now on closes its own sandbox.
	r.opening.Wait()
	r.mu.Lock()
	var sbs []sandbox.Sandbox
	for osb := range r.live {
		if sb := osb.take(); sb != nil {
			sbs = append(sbs, sb)
		}
	}
	r.live = map[*openSandbox]struct{}{}
	r.mu.Unlock()
	var errs []error
	for _, sb := range sbs {
		errs = append(errs, sb.Close())
	}
	for s := range sessions {
		errs = append(errs, s.Close())
	}
	r.closing.Wait()
	r.releaseEnvironments()
	return errors.Join(errs...)
}
