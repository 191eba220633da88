package skillbox

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/egress"
	"github.com/skillbox-dev/skillbox/internal/shellquote"
	"github.com/skillbox-dev/skillbox/internal/skillenv"
	"github.com/skillbox-dev/skillbox/internal/skillenv/jailbuild"
	"github.com/skillbox-dev/skillbox/internal/userdir"
	"github.com/skillbox-dev/skillbox/policy"
	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/skill"
)

// Per-skill environments (docs/SKILLWARE.md, "Requirements"): a skill
// whose manifest declares requirements runs, on a backend that runs
// environments (sandbox.EnvironmentRunner: linux), on a virtual
// environment built from exactly those requirements with pip in a jail
// (internal/skillenv, internal/skillenv/jailbuild), found or built before
// its sandbox opens. A backend whose interpreter cannot run pip
// (sandbox.EnvironmentTargeter: pyodide) gets the same build, for its
// target: pure-Python wheels only, in a folder it loads. Other backends
// check the requirements against their interpreter, as before.

// WithEnvProgress sets where the progress of an environment build goes,
// line by line: one line when a build starts, then pip's output. The CLI
// prints to stderr; nil discards.
func WithEnvProgress(f func(line string)) Option { return func(c *config) { c.envProgress = f } }

// WithEnvSdists lets environment builds install source distributions,
// whose build scripts run (in the build's jail) — the operator's opt-in;
// builds take wheels only otherwise. The policy file's "sdists: allow"
// (policy.Policy.AllowsSdists) does the same, for every skill or for one.
func WithEnvSdists(on bool) Option { return func(c *config) { c.envSdists = on } }

// WithEnvPolicy makes environments follow the policy file p's settings
// ("sdists") in a Runtime that has no WithPolicy (one that only inspects
// or builds environments, as `skillbox env build` and `lock` do), so that
// it builds the same environments (the same keys) as the calls of a
// Runtime with WithPolicy(p). WithPolicy's policy wins.
func WithEnvPolicy(p *policy.Policy) Option { return func(c *config) { c.envPolicy = p } }

// EnvCacheDir returns the folder of built environments: "envs" in the
// cache folder (cacheDir, or the user's cache folder when empty).
func EnvCacheDir(cacheDir string) (string, error) {
	if cacheDir == "" {
		var err error
		if cacheDir, err = userdir.Cache(os.Getenv); err != nil {
			return "", errdefs.Wrap(errdefs.Unavailable, err, "skill environments")
		}
	}
	return filepath.Join(cacheDir, "envs"), nil
}

// envState is the Runtime's part in environments: the cache, and the
// environments its calls use (held with skillenv's Use until Close, so a
// prune spares them while this Runtime may still run them).
type envState struct {
	mu    sync.Mutex
	cache *skillenv.Cache
	used  map[string]func()
}

func (r *Runtime) envCache() (*skillenv.Cache, error) {
	r.envs.mu.Lock()
	defer r.envs.mu.Unlock()
	if r.envs.cache == nil {
		dir, err := EnvCacheDir(r.cfg.cacheDir)
		if err != nil {
			return nil, err
		}
		// The policy file's env_build limits (the defaults where unset).
		var b skillenv.Builder = jailbuild.Builder{}
		if r.cfg.envBuilder != nil {
			b = r.cfg.envBuilder
		}
		r.envs.cache = &skillenv.Cache{Dir: dir, Builder: b, Bounds: skillenv.BoundsOf(r.envPolicy())}
	}
	return r.envs.cache, nil
}

// environment finds or builds the environment of p's skill when it
// declares requirements and p's backend runs environments, and puts it in
// the Spec. A build that fails is errdefs.Unavailable naming the
// requirements and pip's reason.
func (r *Runtime) environment(ctx context.Context, p *prepared) error {
	spec := &p.decision.Spec
	if len(spec.Requirements) == 0 || spec.Container != nil {
		// A container skill's packages are its image's: the backend
		// checks them against the image's python.
		return nil
	}
	d, err := r.backends.Choose(ctx, p.backend, spec.BestEffort)
	if err != nil {
		return nil // the opening reports it
	}
	er, ok := d.(sandbox.EnvironmentRunner)
	if !ok || !er.RunsEnvironments() {
		return nil
	}
	if spec.BestEffort {
		// As the backend runs the call without the layers the host
		// lacks, the build runs without its cgroup controllers.
		ctx = jailbuild.WithBestEffort(ctx)
	}
	pin, err := r.environmentPin(p)
	if err != nil {
		return err
	}
	env, resolved, err := r.ensureEnvironment(ctx, p.skill, er, *spec, pin)
	if err != nil {
		return err
	}
	if p.lock != nil {
		if err := p.lock.checkEnvironment(p.skill, resolved); err != nil {
			return err
		}
	}
	if err := trustedEnvironment(p, resolved); err != nil {
		return err
	}
	spec.Environment = env
	return nil
}

// envPin is a recorded set that a call installs instead of resolving its
// requirements again: pip installs exactly it, in hash-checking mode
// (--require-hashes --no-deps), so that what runs is what was recorded
// and a new release on the index changes nothing.
type envPin struct {
	set []string
	// what the set is ("locked", "trusted") and where it is recorded, for
	// the denial of a set whose hashes do not match what the index serves;
	// permission and grant are that denial's.
	what, record, permission, grant string
}

// environmentPin returns the set p's call installs, nil when its
// requirements are resolved: a locked call's, whose entry records the
// resolved set; else the set the trust entry that trusts the skill
// recorded (Decision.EnvironmentPin). A recorded set without hashes is
// refused for a locked call; a trusted one is resolved again and
// compared (trustedEnvironment), as pip's hash-checking mode cannot
// install it.
func (r *Runtime) environmentPin(p *prepared) (*envPin, error) {
	id := p.skill.ID
	if p.lock != nil {
		if set := p.lock.environment(id); len(set) > 0 {
			if _, err := skillenv.ParsePinned(set); err != nil {
				return nil, &errdefs.DeniedError{
					Permission: "lockfile environment",
					Reason:     fmt.Sprintf("skill %s: a locked call runs only the environment %s records, and it cannot be installed as recorded: %v", id, p.lock.Path(), err),
					Grant:      fmt.Sprintf("requirements that pip installs from an index or wheel files (whose hashes it records), locked again with '%s'", p.lock.relockCommand(id)),
				}
			}
			return &envPin{set: set, what: "locked", record: "the lockfile", permission: "lockfile environment",
				grant: fmt.Sprintf("the index serving what was locked, or, after reviewing what it serves now, '%s'", p.lock.relockCommand(id))}, nil
		}
	}
	if set := p.decision.EnvironmentPin; len(set) > 0 {
		if _, err := skillenv.ParsePinned(set); err != nil {
			return nil, nil
		}
		return &envPin{set: set, what: "trusted", record: "its trust entry", permission: "trust",
			grant: fmt.Sprintf("the index serving what was trusted, or, after reviewing what it serves now, 'skillbox trust %s'", shellquote.Word(trustRef(p)))}, nil
	}
	return nil, nil
}

// trustRef is how `skillbox trust` names p's skill (skill.Skill.Ref).
func trustRef(p *prepared) string { return p.skill.Ref() }

// trustedEnvironment refuses a call of a skill trusted by a trust store
// entry that recorded its environment's resolved set
// (Decision.EnvironmentPin) when the environment is another set: a drift,
// denied like an edited bundle. A call installs the trusted set itself
// (environmentPin), so this happens when a locked call's set is not the
// trusted one, or when a trusted set without hashes resolved to another.
func trustedEnvironment(p *prepared, resolved []string) error {
	pin := p.decision.EnvironmentPin
	if pin == nil || slices.Equal(pin, resolved) {
		return nil
	}
	return &errdefs.DeniedError{
		Permission: "trust",
		Reason:     fmt.Sprintf("skill %s: its environment resolved to another set than when it was trusted (%s)", p.skill.ID, setDiff(pin, resolved)),
		Grant:      fmt.Sprintf("'skillbox trust %s' after reviewing the new set, or --trust-remote-code for this call", shellquote.Word(trustRef(p))),
	}
}

// setDiff describes how the resolved set now differs from was.
func setDiff(was, now []string) string {
	var parts []string
	for _, x := range now {
		if !slices.Contains(was, x) {
			parts = append(parts, "now "+x)
		}
	}
	for _, x := range was {
		if !slices.Contains(now, x) {
			parts = append(parts, "was "+x)
		}
	}
	return strings.Join(parts, ", ")
}

// lockedSet is an environment's resolved set as a lockfile records it:
// "name==version sha256=HEX" (the hash left out when pip reported none),
// sorted.
func lockedSet(pkgs []skillenv.Package) []string {
	out := make([]string, 0, len(pkgs))
	for _, p := range pkgs {
		x := p.String()
		if p.Hash != "" {
			x += " " + p.Hash
		}
		out = append(out, x)
	}
	slices.Sort(out)
	return out
}

// envRequest is the build request of spec's requirements on er's
// interpreter, with pip's configuration from the Runtime's environment.
//
// Sdists are allowed by WithEnvSdists, or by the policy file's "sdists:
// allow" (top level, or in the skill id's entry).
func (r *Runtime) envRequest(ctx context.Context, er sandbox.EnvironmentRunner, spec sandbox.Spec, id string) (skillenv.Request, error) {
	exe, version, err := er.EnvironmentBase(ctx, spec)
	if err != nil {
		return skillenv.Request{}, err
	}
	idx, err := skillenv.IndexFromEnv(func(k string) string {
		v, _ := r.cfg.lookupEnv(k)
		return v
	})
	if err != nil {
		return skillenv.Request{}, err
	}
	req := skillenv.Request{Python: exe, PythonVersion: version, Requirements: spec.Requirements,
		Index: idx, Sdists: r.cfg.envSdists || r.envPolicy().AllowsSdists(id)}
	if t, ok := er.(sandbox.EnvironmentTargeter); ok {
		// Pure-Python wheels for the target's Python; never sdists.
		name, pyVersion, err := t.EnvironmentTarget(ctx)
		if err != nil {
			return skillenv.Request{}, err
		}
		req.Target, req.Sdists = &skillenv.Target{Name: name, PythonVersion: pyVersion}, false
	}
	return req, nil
}

// envPolicy is the policy file whose settings environments follow:
// WithPolicy's, else WithEnvPolicy's (nil: none).
func (r *Runtime) envPolicy() *policy.Policy {
	if r.cfg.policy != nil {
		return r.cfg.policy
	}
	return r.cfg.envPolicy
}

// ensureEnvironment finds or builds the environment of spec's
// requirements, or of the recorded set pin when it is not nil.
func (r *Runtime) ensureEnvironment(ctx context.Context, s *skill.Skill, er sandbox.EnvironmentRunner, spec sandbox.Spec, pin *envPin) (*sandbox.Environment, []string, error) {
	id := s.ID
	req, err := r.envRequest(ctx, er, spec, id)
	if err != nil {
		return nil, nil, err
	}
	if pin != nil {
		req.Pinned = pin.set
	}
	c, err := r.envCache()
	if err != nil {
		return nil, nil, err
	}
	reqs := skillenv.Listed(spec.Requirements, ", ")
	for attempt := 0; ; attempt++ {
		e, err := c.Lookup(req)
		if err != nil {
			return nil, nil, err
		}
		if e == nil {
			if e, err = r.buildEnvironment(ctx, c, req, s, reqs, pin); err != nil {
				return nil, nil, err
			}
		}
		if err := r.useEnvironment(c, e.Key); err != nil {
			return nil, nil, err
		}
		// A prune may have come between the build and the hold.
		if again, err := c.Lookup(req); err == nil && again != nil {
			return &sandbox.Environment{Key: e.Key, Digest: again.Digest(), Dir: e.Dir, Base: e.Base}, lockedSet(again.Resolved), nil
		}
		if attempt > 0 {
			return nil, nil, errdefs.New(errdefs.Unavailable, "skill %s: its environment was removed while it was being prepared", id)
		}
	}
}

// buildEnvironment builds req's environment, telling the progress sink;
// pin is the recorded set req installs, if any.
func (r *Runtime) buildEnvironment(ctx context.Context, c *skillenv.Cache, req skillenv.Request, s *skill.Skill, reqs string, pin *envPin) (*skillenv.Env, error) {
	id := s.ID
	progress := r.cfg.envProgress
	if progress == nil {
		progress = func(string) {}
	}
	if pin != nil {
		reqs += fmt.Sprintf("; the %s set: %s", pin.what, skillenv.Listed(pin.set, ", "))
	}
	progress(fmt.Sprintf("building the environment of %s (requirements: %s) with pip in a jail, once", id, reqs))
	key, _ := req.Key()
	ctx = egress.WithAudit(ctx, r.buildAudit(id, key))
	var pipErrors, hashErrors []string
	hashMismatch := false
	e, err := c.Ensure(ctx, req, func(line string) {
		switch {
		case strings.HasPrefix(line, "ERROR:"):
			if len(pipErrors) < 5 {
				pipErrors = append(pipErrors, strings.TrimSpace(strings.TrimPrefix(line, "ERROR:")))
			}
			hashMismatch = hashMismatch || (pin != nil && strings.Contains(line, "DO NOT MATCH THE HASHES"))
		case hashMismatch && len(hashErrors) < 12 && strings.TrimSpace(line) != "":
			// pip's details: each package, "Expected sha256 ...", "Got ...".
			hashErrors = append(hashErrors, strings.Join(strings.Fields(line), " "))
		}
		progress(line)
	})
	if err != nil {
		why := ""
		if len(pipErrors) > 0 {
			why = "; pip: " + strings.Join(pipErrors, "; ")
		}
		if hashMismatch {
			// What the index serves is not what was recorded: a drift (or
			// a tampered record or index), denied, not a build that may
			// work on a retry.
			return nil, &errdefs.DeniedError{
				Permission: pin.permission,
				Reason: fmt.Sprintf("skill %s: the distributions of its %s environment do not match the hashes %s records (pip: %s)",
					id, pin.what, pin.record, strings.Join(hashErrors, "; ")),
				Grant: pin.grant,
			}
		}
		env := "its environment"
		if req.Target != nil {
			env = fmt.Sprintf("its environment for %s (Python %s)", req.Target.Name, req.Target.PythonVersion)
		}
		return nil, errdefs.Wrap(errdefs.KindOf(err), fmt.Errorf("%w%s", err, why),
			fmt.Sprintf("skill %s needs %s, and %s could not be built (index: %s; `skillbox env build %s` retries)", id, reqs, env, req.Index, shellquote.Word(s.Ref())))
	}
	return e, nil
}

// buildAudit returns the sink for the egress decisions of the build of the
// environment with key for skill id: each becomes an audit record
// (audit.EventEgress) naming the skill and the environment (EnvBuild).
func (r *Runtime) buildAudit(id, key string) func(egress.Event) {
	return func(ev egress.Event) {
		rec := ev.Record()
		rec.Skill = id
		rec.Egress.EnvBuild = key
		rec.Detail = "environment build: " + rec.Detail
		if err := r.cfg.audit.Write(rec); err != nil && r.cfg.logger != nil {
			r.cfg.logger.Error("audit write failed", "err", err)
		}
	}
}

// useEnvironment holds key's environment in use until Close.
func (r *Runtime) useEnvironment(c *skillenv.Cache, key string) error {
	r.envs.mu.Lock()
	defer r.envs.mu.Unlock()
	if _, ok := r.envs.used[key]; ok {
		return nil
	}
	release, err := c.Use(key)
	if err != nil {
		return err
	}
	if r.envs.used == nil {
		r.envs.used = map[string]func(){}
	}
	r.envs.used[key] = release
	return nil
}

// releaseEnvironments ends every hold of useEnvironment (Close).
func (r *Runtime) releaseEnvironments() {
	r.envs.mu.Lock()
	defer r.envs.mu.Unlock()
	for k, release := range r.envs.used {
		release()
		delete(r.envs.used, k)
	}
}

// EnvironmentStatus says which interpreter and which environment a skill
// runs on with a backend.
type EnvironmentStatus struct {
	Skill   string `json:"skill"`
	Backend string `json:"backend"`
	// Requirements are the manifest's requirement strings.
	Requirements []string `json:"requirements,omitempty"`
	// RunsEnvironments is whether the backend runs a skill on its own
	// environment; when false, it checks Requirements against Python.
	RunsEnvironments bool `json:"runs_environments"`
	// Python is the interpreter calls run on (the environment's base).
	Python string `json:"python,omitempty"`
	// BuildPython, when set, is the host interpreter that builds the
	// environment with pip for Python, an interpreter that cannot
	// ("Pyodide 0.28.0 (Python 3.13.2)"): the environment then holds
	// pure-Python wheels for Python's version.
	BuildPython string `json:"build_python,omitempty"`
	// Key and Dir name the skill's environment (with requirements, on a
	// backend that runs environments); Built says whether it exists, and
	// Resolved is what pip installed in it ("name==version").
	Key string `json:"key,omitempty"`
	// Digest, once it is built, names what it holds (skillenv's
	// Env.Digest: its key and the distributions installed, with their
	// archives' hashes): what trusted_environments lists to trust it.
	Digest   string   `json:"digest,omitempty"`
	Dir      string   `json:"dir,omitempty"`
	Built    bool     `json:"built"`
	Resolved []string `json:"resolved,omitempty"`
	// Locked is the resolved set as a lockfile records it ("name==version
	// sha256=HEX").
	Locked []string `json:"locked,omitempty"`
	// Trusted says the policy file's trusted_environments lists Digest: a
	// process that serves several calls (a zygote) processes the
	// environment's site and imports its packages once; otherwise each
	// call's own process does, and ImportCost is what that costs.
	Trusted bool `json:"trusted"`
	// KeyListed says trusted_environments lists Key, which trusts
	// nothing (a key names what an environment is built from, not what it
	// holds): the operator meant to trust it, and lists Digest instead,
	// after reviewing Resolved.
	KeyListed bool `json:"key_listed,omitempty"`
	// ImportCost is the per-call cost of the environment when it is not
	// trusted, measured by MeasureEnvironment (nil otherwise, or when it
	// could not be measured: ImportCostError says why).
	ImportCost      *sandbox.ImportCost `json:"import_cost,omitempty"`
	ImportCostError string              `json:"import_cost_error,omitempty"`
}

// Environment reports the environment of the skill ref on backend (""
// means the Runtime's default), without building it.
func (r *Runtime) Environment(ctx context.Context, ref, backend string) (*EnvironmentStatus, error) {
	return r.environmentStatus(ctx, ref, backend, false)
}

// MeasureEnvironment reports the environment of the skill ref on backend
// as Environment does and, when it is built and the backend can
// (sandbox.EnvironmentMeasurer), measures what it costs each call when
// it is not trusted (EnvironmentStatus.ImportCost): in the backend's
// sandbox, as a call's own process pays it, never running the skill's
// code (`skillbox inspect`).
func (r *Runtime) MeasureEnvironment(ctx context.Context, ref, backend string) (*EnvironmentStatus, error) {
	st, err := r.environmentStatus(ctx, ref, backend, false)
	if err != nil || !st.Built {
		return st, err
	}
	s, err := r.Resolve(ref)
	if err != nil {
		return nil, err
	}
	d, err := r.backends.Choose(ctx, st.Backend, false)
	if err != nil {
		st.ImportCostError = err.Error()
		return st, nil
	}
	m, ok := d.(sandbox.EnvironmentMeasurer)
	if !ok {
		st.ImportCostError = "backend " + st.Backend + " cannot measure it"
		return st, nil
	}
	spec := sandbox.Spec{SkillID: s.ID, SkillRef: s.Ref(), Digest: s.Digest, BundleDir: s.Dir, Manifest: s.Bundle.Manifest.JSON(),
		Requirements: st.Requirements, Environment: &sandbox.Environment{Key: st.Key, Dir: st.Dir, Base: st.Python}}
	if st.ImportCost, err = m.MeasureEnvironment(ctx, spec); err != nil {
		st.ImportCostError = err.Error()
	}
	return st, nil
}

// BuildEnvironment builds the environment of the skill ref on backend
// unless it is built, and reports it (`skillbox env build`).
func (r *Runtime) BuildEnvironment(ctx context.Context, ref, backend string) (*EnvironmentStatus, error) {
	return r.environmentStatus(ctx, ref, backend, true)
}

func (r *Runtime) environmentStatus(ctx context.Context, ref, backend string, build bool) (*EnvironmentStatus, error) {
	s, err := r.Resolve(ref)
	if err != nil {
		return nil, err
	}
	if backend == "" {
		backend = r.cfg.backend
	}
	d, err := r.backends.Choose(ctx, backend, false)
	if err != nil {
		return nil, err
	}
	st := &EnvironmentStatus{Skill: s.ID, Backend: d.Name(), Requirements: s.Bundle.Manifest.Requirements}
	er, ok := d.(sandbox.EnvironmentRunner)
	st.RunsEnvironments = ok && er.RunsEnvironments() && !s.Bundle.Manifest.Containerized()
	if !st.RunsEnvironments {
		return st, nil
	}
	spec := sandbox.Spec{Requirements: st.Requirements}
	req, err := r.envRequest(ctx, er, spec, s.ID)
	if err != nil {
		return nil, err
	}
	st.Python = req.Python
	if req.Target != nil {
		st.BuildPython = req.Python
		st.Python = fmt.Sprintf("%s (Python %s)", req.Target.Name, req.Target.PythonVersion)
	}
	if len(st.Requirements) == 0 {
		return st, nil
	}
	c, err := r.envCache()
	if err != nil {
		return nil, err
	}
	if st.Key, err = req.Key(); err != nil {
		return nil, err
	}
	e, err := c.Lookup(req)
	if err != nil {
		return nil, err
	}
	if e == nil && build {
		if e, err = r.buildEnvironment(ctx, c, req, s, skillenv.Listed(st.Requirements, ", "), nil); err != nil {
			return nil, err
		}
	}
	if e != nil {
		st.Built, st.Dir, st.Digest = true, e.Dir, e.Digest()
		for _, p := range e.Resolved {
			st.Resolved = append(st.Resolved, p.String())
		}
		st.Locked = lockedSet(e.Resolved)
	}
	if pol := r.envPolicy(); pol != nil {
		st.Trusted = st.Digest != "" && slices.Contains(pol.TrustedEnvironments, st.Digest)
		st.KeyListed = slices.Contains(pol.TrustedEnvironments, st.Key)
	}
	return st, nil
}
