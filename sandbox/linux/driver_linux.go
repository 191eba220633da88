package linux

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/backend"
	"github.com/skillbox-dev/skillbox/internal/cgroup"
	"github.com/skillbox-dev/skillbox/internal/egress"
	"github.com/skillbox-dev/skillbox/internal/jail"
	"github.com/skillbox-dev/skillbox/internal/pyinterp"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// Name is the driver's registered name.
const Name = "linux"

// Exec modes: how calls reach a fresh interpreter.
const (
	// ExecAuto runs a call on a ready spare jail (ExecPrestart's path)
	// and forks it from a zygote (ExecZygote's) when calls come faster
	// than spares start: the default.
	ExecAuto = "auto"
	// ExecZygote forks each call from a pooled zygote.
	ExecZygote = "zygote"
	// ExecPrestart runs every call in a new jail and interpreter started
	// before the call: a spare waits with the skill imported.
	ExecPrestart = "prestart"
	// ExecCold starts a new jail and interpreter for every call.
	ExecCold = "cold"
)

// Options configure the driver. The zero value is ready to use.
//
// An operator sets Exec, PoolSize, MinIdle, IdleTimeout and NoPrefork in
// the policy file's backends section (backends: linux: {exec, pool_size,
// min_idle, idle_timeout, prefork}; docs/PERMISSIONS.md), which the
// registry decodes into Options; the other fields are code-only.
type Options struct {
	// Python is the interpreter used when a Spec names none; empty means
	// $SKILLBOX_PYTHON, else python3 on PATH, resolved to the real binary
	// (internal/pyinterp: the same rule as every backend).
	Python string
	// Exec is ExecAuto (default), ExecZygote, ExecPrestart or ExecCold,
	// for single-use Specs (policy file: exec).
	Exec string
	// PoolSize bounds the zygotes per Sandbox; 0 means 2×NumCPU (policy
	// file: pool_size, 1 to 1024).
	PoolSize int
	// IdleTimeout is how long a surplus idle zygote lives; 0 means 30s
	// (policy file: idle_timeout).
	IdleTimeout time.Duration
	// MinIdle zygotes (with ExecAuto and ExecPrestart: spare jails) are
	// kept warm (started at Open, replaced when they die or are used)
	// while the sandbox is in use; 0 means 1, negative means none
	// (policy file: min_idle, where 0 means none and the value may not
	// exceed the pool size).
	MinIdle int
	// ReleaseAfter is how long a sandbox may go without a call before all
	// its zygotes, the MinIdle ones too, are closed (the next call starts
	// one, as the first did); 0 means 5m, negative means never (policy
	// file: release_after, a duration or never).
	ReleaseAfter time.Duration
	// NoPrefork disables forking the next child while a zygote is idle
	// (policy file: prefork: false).
	NoPrefork bool
	// UID and GID the skill runs as when the host process is root; 0 means
	// an id of each sandbox's own (jail.NewID: 2147352576 and up), which
	// owns nothing on the host.
	UID, GID int
	// ScratchBytes caps the /scratch tmpfs; 0 means 64 MiB.
	ScratchBytes int64
	// ImageCache is the folder of unpacked images (internal/image's Cache)
	// that skills with execution: container run from; empty means the
	// cache folder's "images" ($XDG_CACHE_HOME/skillbox/images). A driver
	// the registry builds for a Runtime gets its cache folder's
	// (sandbox.Config.CacheDir).
	ImageCache string
}

// Driver is the linux backend: namespaces, a minimal read-only root,
// Landlock, seccomp, cgroups, and a pool of pre-imported zygotes.
type Driver struct {
	opts  Options
	seams seams
	// last is the latest probe, reused briefly (see probe).
	last struct {
		sync.Mutex
		python string
		at     time.Time
		r      *probeResult
	}
}

// seams are the driver's view of the host and of the network, fixed when
// it is built: New uses the real ones; the package's tests build drivers
// with others (export_test.go).
type seams struct {
	// missing marks probe layers and kernel hardenings (jail.Fallbacks)
	// missing, with the reason, as on a host that lacks them.
	missing map[string]string
	// resolver looks up names for the egress proxies (nil: the system's).
	resolver egress.Resolver
	// upstreamRoots verify intercepted upstreams (nil: the host's roots).
	upstreamRoots *x509.CertPool
	// startAllowance is what a call may spend before the skill's own call
	// begins (a free zygote, or a new jail, interpreter and skill import)
	// beyond Limits.Timeout: backend.StartAllowance.
	startAllowance time.Duration
}

// New returns a driver with opts.
func New(opts Options) *Driver {
	return newDriver(opts, seams{startAllowance: backend.StartAllowance})
}

func newDriver(opts Options, s seams) *Driver {
	if opts.Exec == "" {
		opts.Exec = ExecAuto
	}
	if opts.PoolSize <= 0 {
		opts.PoolSize = defaultPoolSize()
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 30 * time.Second
	}
	if opts.MinIdle == 0 {
		opts.MinIdle = 1
	}
	if opts.ReleaseAfter == 0 {
		opts.ReleaseAfter = 5 * time.Minute
	}
	if opts.ScratchBytes <= 0 {
		opts.ScratchBytes = 64 << 20
	}
	return &Driver{opts: opts, seams: s}
}

// Name returns "linux".
func (d *Driver) Name() string { return Name }

// Probe reports each isolation layer and what they enforce together.
func (d *Driver) Probe(ctx context.Context) sandbox.Capabilities {
	c := d.probe(ctx, d.opts.Python).caps
	c.Layers, c.Enforces = slices.Clone(c.Layers), slices.Clone(c.Enforces)
	return c
}

// Open checks the host against spec and prepares a sandbox: in zygote
// mode it starts the pool's first zygote, so a skill that fails to import
// fails here, as a skill error of type load.
func (d *Driver) Open(ctx context.Context, spec sandbox.Spec) (sandbox.Sandbox, error) {
	if spec.Mode != "" && spec.Mode != sandbox.ModeSingleUse && spec.Mode != sandbox.ModeSession {
		return nil, errdefs.New(errdefs.Invalid, "unknown mode %q", spec.Mode)
	}
	st, err := os.Stat(spec.BundleDir)
	if err != nil || !st.IsDir() {
		return nil, errdefs.New(errdefs.Invalid, "bundle %q is not a directory", spec.BundleDir)
	}
	python := spec.Python
	if python == "" {
		python = d.opts.Python
	}
	if spec.Environment != nil {
		python = spec.Environment.Base
	}
	pr := d.probe(ctx, python)
	if err := backend.CheckRequire(pr.caps, Name, spec.Require); err != nil {
		return nil, err
	}
	if err := backend.CheckLimits(spec.Limits); err != nil {
		return nil, err
	}
	lim := spec.Limits.WithDefaults()
	reqNames, err := backend.RequirementNames(spec.Requirements)
	if err != nil {
		return nil, err
	}
	var warnings []string
	for _, l := range pr.missing() {
		if l.Name == LayerPython && spec.Container != nil {
			continue // the image brings its own
		}
		if !spec.BestEffort || l.Name == LayerPython {
			return nil, errdefs.New(errdefs.Unavailable,
				"backend linux: isolation layer %s is missing: %s (--best-effort runs without it, with a warning on every call)", l.Name, l.Detail)
		}
		warnings = append(warnings, fmt.Sprintf("best-effort: running without %s (%s)", l.Name, l.Detail))
	}
	if lim.CPU > 0 && !pr.layer(LayerCPU).Available {
		if !spec.BestEffort {
			return nil, errdefs.New(errdefs.Unavailable, "backend linux: isolation layer %s is missing: %s", LayerCPU, pr.layer(LayerCPU).Detail)
		}
		warnings = append(warnings, "best-effort: CPU limit not enforced ("+pr.layer(LayerCPU).Detail+")")
	}
	interp := pr.interp
	if env := spec.Environment; env != nil {
		if interp, err = environmentInterp(pr.interp, env); err != nil {
			return nil, err
		}
	}
	b := &box{
		d: d, spec: spec, lim: lim, warnings: warnings, interp: interp,
		cgHost: pr.cg, reqNames: reqNames, closed: make(chan struct{}), outsideAudit: egress.AuditFrom(ctx),
		judge: backend.Judge{SkillID: spec.SkillID, Limits: lim,
			OOM: "the kernel OOM killer stopped the skill", Refused: "process creation was refused"},
	}
	var root jail.Root
	if spec.Container != nil {
		c, err := d.openContainer(ctx, spec)
		if err != nil {
			return nil, err
		}
		b.container, root = c, c.Root
		defer func() {
			if b.run == nil { // Open failed
				c.Release()
			}
		}()
	} else {
		root = jail.HostPython{Interp: interp}
	}
	for _, c := range []struct{ layer, ctl string }{{LayerMemory, cgroup.Memory}, {LayerPids, cgroup.Pids}, {LayerCPU, cgroup.CPU}} {
		if pr.layer(c.layer).Available && (c.ctl != cgroup.CPU || lim.CPU > 0) {
			b.controllers = append(b.controllers, c.ctl)
		}
	}
	for _, p := range spec.ReadPaths {
		if err := checkReadPath(p); err != nil {
			return nil, err
		}
	}
	eg, err := d.egressConfig(spec)
	if err != nil {
		return nil, err
	}
	if eg != nil {
		if err := checkEgressHost(pr); err != nil {
			return nil, err
		}
	}
	js := jail.Spec{
		Root:         root,
		ReadPaths:    spec.ReadPaths,
		Bundle:       spec.BundleDir,
		ScratchBytes: d.opts.ScratchBytes,
		UID:          d.opts.UID,
		GID:          d.opts.GID,
		Env:          spec.Env,
		Egress:       eg,
		NoLandlock:   !pr.layer(LayerLandlock).Available,
		NoSeccomp:    !pr.layer(LayerSeccomp).Available,
	}
	if !pr.layer(LayerPids).Available {
		js.Nproc = lim.Pids
	}
	for _, f := range jail.Fallbacks(true, d.seams.missing) {
		if !spec.BestEffort {
			return nil, errdefs.New(errdefs.Unavailable,
				"backend linux: %s is missing: %s (--best-effort runs without it, with a warning on every call)", f.Name, f.Detail)
		}
		b.warnings = append(b.warnings, fmt.Sprintf("best-effort: running without %s (%s)", f.Name, f.Detail))
		f.Apply(&js)
	}
	if b.jail, err = jail.New(js); err != nil {
		return nil, err
	}
	for _, n := range b.jail.TrustNotes() {
		b.warnings = append(b.warnings, "tls: "+n)
	}
	if b.container != nil {
		if err := b.checkPython(ctx, js); err != nil {
			return nil, err
		}
	}
	switch {
	case spec.Mode == sandbox.ModeSession:
		b.run = &session{b: b}
	case d.opts.Exec == ExecCold || spec.OneShot && !spec.Warm:
		// One call (spec.OneShot): a zygote would import the standard
		// library for calls that never come, and pre-fork a child after
		// it, and a spare jail would wait for a call that never comes. A
		// warm skill keeps its zygote (the operator asked for its import
		// there), without the pre-fork (pool.preforks).
		b.run = &cold{b: b}
	case b.container != nil && !b.container.Trusted(spec) || d.opts.Exec == ExecPrestart && !spec.Warm:
		// An untrusted image's interpreter and standard library are its
		// author's code: never in a process that serves several calls, so
		// every call gets a fresh interpreter in a fresh jail, started
		// ahead of it (warm or not).
		p := newPrestart(b)
		if err := p.warm(ctx); err != nil {
			p.close()
			return nil, err
		}
		b.run = p
	case d.opts.Exec == ExecAuto && !spec.Warm:
		a := newAuto(b)
		if err := a.warm(ctx); err != nil {
			a.close()
			return nil, err
		}
		b.run = a
	default:
		p := newPool(b, d.opts.MinIdle)
		if err := p.warm(ctx); err != nil {
			p.close()
			return nil, err
		}
		b.run = p
	}
	return b, nil
}

// RunsEnvironments reports that the linux backend runs a skill on its own
// environment (Spec.Environment).
func (d *Driver) RunsEnvironments() bool { return true }

// EnvironmentBase returns the interpreter a skill's environment is made
// from for spec: the one its calls would run on (Spec.Python, else the
// backend's python setting, else pyinterp's default).
func (d *Driver) EnvironmentBase(ctx context.Context, spec sandbox.Spec) (executable, version string, err error) {
	python := spec.Python
	if python == "" {
		python = d.opts.Python
	}
	in, err := pyinterp.Resolve(ctx, python)
	if err != nil {
		return "", "", err
	}
	return in.Executable, in.Version, nil
}

// environmentInterp is the interpreter of env, made from base: checked,
// never run on the host, and started in the jail as base (pyinterp's
// InEnvironment).
func environmentInterp(base *pyinterp.Interpreter, env *sandbox.Environment) (*pyinterp.Interpreter, error) {
	if base.Executable != env.Base {
		return nil, errdefs.New(errdefs.Invalid, "backend linux: environment %s was made from %s, not %s", env.Key, env.Base, base.Executable)
	}
	if !filepath.IsAbs(env.Dir) || filepath.Clean(env.Dir) != env.Dir {
		return nil, errdefs.New(errdefs.Invalid, "backend linux: environment folder %q is not an absolute, clean path", env.Dir)
	}
	if err := checkReadPath(env.Dir); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(env.Dir, "pyvenv.cfg")); err != nil {
		return nil, errdefs.New(errdefs.Unavailable, "backend linux: environment %s: %v", env.Key, err)
	}
	in, err := base.InEnvironment(env.Dir)
	if err != nil {
		return nil, errdefs.New(errdefs.Unavailable, "backend linux: environment %s: %v", env.Key, err)
	}
	return in, nil
}

// checkReadPath refuses an operator-granted read path the jail cannot show
// at the same path: a relative one, the root, or one that would cover or
// sit in the jail's own folders.
func checkReadPath(p string) error {
	if !filepath.IsAbs(p) || filepath.Clean(p) != p || p == "/" {
		return errdefs.New(errdefs.Invalid, "read path %q: must be an absolute, clean path other than /", p)
	}
	for _, own := range jail.OwnDirs() {
		if p == own || strings.HasPrefix(p, own+"/") {
			return errdefs.New(errdefs.Unsupported, "backend linux: read path %s would sit in the jail's own %s", p, own)
		}
	}
	if _, err := os.Stat(p); err != nil {
		return errdefs.New(errdefs.Invalid, "read path %s: %v", p, err)
	}
	return nil
}

// runner is how a box runs calls (zygote pool, cold, session).
type runner interface {
	call(ctx context.Context, req sandbox.Request) (*sandbox.Result, error)
	close()
}

// box is the linux Sandbox for one Spec.
type box struct {
	d           *Driver
	spec        sandbox.Spec
	lim         sandbox.Limits
	judge       backend.Judge // a failed call's error, in the linux backend's words
	warnings    []string
	interp      *pyinterp.Interpreter
	reqNames    []string
	cgHost      *cgroup.Host
	controllers []string
	// jail is the jail every zygote, session or cold worker starts in.
	jail *jail.Jail
	// container is the image a Spec.Container skill runs in (nil: the
	// host interpreter, interp).
	container *containerRoot
	// outsideAudit receives the egress decisions made outside any call
	// (egress.AuditFrom of Open's context, valid for the sandbox's life).
	outsideAudit func(egress.Event)
	run          runner
	closeOnce    sync.Once
	closed       chan struct{}
}

// Call runs one call. The runner bounds the skill's call by Limits.Timeout
// and, apart from it, whatever has to happen first (waiting for a zygote,
// starting a jail, the skill's import) by startBound.
func (b *box) Call(ctx context.Context, req sandbox.Request) (*sandbox.Result, error) {
	select {
	case <-b.closed:
		return nil, errdefs.New(errdefs.Invalid, "sandbox for %s is closed", b.spec.SkillID)
	default:
	}
	res, err := b.run.call(ctx, req)
	if res != nil {
		res.Warnings = append(res.Warnings, b.warnings...)
	}
	return res, err
}

// startContext bounds what happens before the skill's call: the call's
// timeout plus the start allowance. The timeout is the skill's: a zygote
// that the previous call's hostility killed, or a machine too loaded to
// start one quickly, must not eat into it; but a start that hangs must
// still end.
func (b *box) startContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, b.startBound())
}

func (b *box) startBound() time.Duration { return b.lim.Timeout + b.d.seams.startAllowance }

// callContext bounds the skill's call.
func (b *box) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, b.lim.Timeout)
}

// startErr is what the caller sees when getting a sandbox for the call
// failed: a timeout naming the start when startContext ran out, the call's
// timeout when the caller's own deadline did, else err. Either keeps what
// the skill printed while it was imported (errdefs.Output of err).
func (b *box) startErr(ctx, sctx context.Context, err error) error {
	if ctx.Err() == nil && errors.Is(sctx.Err(), context.DeadlineExceeded) {
		return errdefs.WithOutputOf(errdefs.New(errdefs.Timeout, "call to %s: no sandbox was ready within %v (a jail, Python and the skill's import, or a free one); the skill was not called",
			b.spec.SkillID, b.startBound()), err)
	}
	if ctx.Err() != nil {
		return errdefs.WithOutputOf(b.judge.TimeoutErr(ctx), err)
	}
	return err
}

// Close stops every jail of the sandbox and removes their cgroups.
func (b *box) Close() error {
	b.closeOnce.Do(func() {
		close(b.closed)
		b.run.close()
		if b.container != nil {
			b.container.Release()
		}
	})
	return nil
}

// cgLimits are the cgroup limits for one jail.
func (b *box) cgLimits() cgroup.Limits {
	return cgroup.Limits{Memory: b.lim.Memory, Pids: b.lim.Pids, CPU: b.lim.CPU}
}
