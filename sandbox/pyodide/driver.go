//go:build unix

package pyodide

import (
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"slices"
	"sync"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/backend"
	"github.com/skillbox-dev/skillbox/internal/worker"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// Name is the backend's registered name.
const Name = "pyodide"

// Options configure the driver. The zero value is usable.
//
// An operator sets Idle, MaxWorkers and Install in the policy file's
// backends section (backends: pyodide: {idle, max_workers, install};
// docs/PERMISSIONS.md), which the registry decodes over its defaults
// (Install on); the other fields are code-only.
type Options struct {
	// CacheDir holds the Deno + Pyodide install and the snapshots;
	// "" means DefaultCacheDir().
	CacheDir string
	// Install, when true, lets Open install Deno and Pyodide with npm if
	// they are missing (progress to Progress). When false, Open fails with
	// errdefs.Unavailable naming what is missing. The registered driver
	// has it on unless the policy file says install: false.
	Install bool
	// Progress receives install progress; nil means os.Stderr.
	Progress interface{ Write([]byte) (int, error) }
	// Idle is how many Web Workers each single-use host process keeps
	// started and snapshot-restored (the skill not yet imported), ahead
	// of its calls (0 means 1; policy file: idle, at most max_workers).
	Idle int
	// MaxWorkers bounds the host processes of one single-use sandbox,
	// each serving one call at a time, so the calls in flight; further
	// calls wait (0 means 4; policy file: max_workers). A host holds
	// about 200 MB plus 128 MiB per started Web Worker.
	MaxWorkers int
	// Recycle is how many single-use calls one host process serves (each
	// in a Web Worker of its own) before it is replaced (0 means 500;
	// policy file: recycle).
	Recycle int
}

// defaultRecycle is Recycle when unset.
const defaultRecycle = 500

// defaultMaxWorkers is MaxWorkers when unset.
const defaultMaxWorkers = 4

// Driver is the Pyodide-on-Deno backend.
type Driver struct {
	opts  Options
	seams seams
	mu    sync.Mutex
	// pyVersion is Pyodide's Python version, once read
	// (EnvironmentTarget).
	pyVersion string
}

// seams are the driver's view of the host and of the network, fixed when
// it is built: New uses the real ones; the package's tests build drivers
// with others (export_test.go).
type seams struct {
	// missing marks cgroup controllers missing, as on a host without them.
	missing map[string]bool
	// noJail, when set, is why the linux jail is missing, as on a host
	// without namespaces.
	noJail string
	// upstreamRoots verify the upstreams the egress proxy intercepts (nil:
	// the host's roots).
	upstreamRoots *x509.CertPool
}

// New returns a driver with opts.
func New(opts Options) *Driver { return newDriver(opts, seams{}) }

func newDriver(opts Options, s seams) *Driver {
	if opts.CacheDir == "" {
		opts.CacheDir = DefaultCacheDir()
	}
	if opts.Idle <= 0 {
		opts.Idle = 1
	}
	if opts.MaxWorkers <= 0 {
		opts.MaxWorkers = defaultMaxWorkers
	}
	if opts.Recycle <= 0 {
		opts.Recycle = defaultRecycle
	}
	if opts.MaxWorkers < opts.Idle {
		opts.MaxWorkers = opts.Idle
	}
	if opts.Progress == nil {
		opts.Progress = os.Stderr
	}
	return &Driver{opts: opts, seams: s}
}

// Name returns "pyodide".
func (*Driver) Name() string { return Name }

// enforces is what Deno's permissions and a single-use WebAssembly
// interpreter guarantee on every host: the skill's Python runs in WebAssembly
// and reaches the outside only through Deno, whose permissions deny
// network, environment, subprocesses, system information, FFI and every
// file but the Pyodide runtime.
var enforces = []sandbox.Feature{
	sandbox.FeatureTimeout, sandbox.FeatureOutputCap, sandbox.FeatureEnvScrub,
	sandbox.FeatureNoNetwork, sandbox.FeatureFSIsolation, sandbox.FeatureProcIsolation,
}

// enforces adds what the usable cgroup controllers enforce: memory-limit
// and pids-limit are claimed only when each worker can be put in a group
// with that controller.
// A network allowlist is enforced only with the linux jail: Deno inside an
// empty network namespace reaches only the egress proxy.
func (d *Driver) enforces(cg cgroups, jailed bool) []sandbox.Feature {
	f := append(slices.Clone(enforces), cg.features()...)
	if jailed {
		f = append(f, sandbox.FeatureNetAllowlist, sandbox.FeatureSecretBinding)
	}
	return f
}

// Probe reports whether Deno and Pyodide are installed. It does not
// install them nor start Deno.
func (d *Driver) Probe(ctx context.Context) sandbox.Capabilities {
	cg := detectCgroups(d.seams.missing)
	jailed, jailWhy := jailState(d.seams.noJail)
	c := sandbox.Capabilities{Isolating: true, Enforces: d.enforces(cg, jailed)}
	rt, err := Locate(d.opts.CacheDir)
	if err != nil {
		c.Reason = err.Error()
		c.Layers = []sandbox.Layer{{Name: "deno+pyodide", Detail: err.Error()}}
		return c
	}
	c.Available = true
	c.Layers = []sandbox.Layer{
		{Name: "deno", Available: true, Detail: DenoVersion + " " + rt.Deno},
		{Name: "pyodide", Available: true, Detail: PyodideVersion + " " + rt.Pyodide},
		{Name: "deno-permissions", Available: true, Detail: "read: pyodide + worker only; write, net, env, run, sys, ffi, import denied"},
	}
	c.Layers = append(c.Layers, cg.layers()...)
	// Defence in depth: without it workers run (with a warning per call).
	c.Layers = append(c.Layers, sandbox.Layer{Name: "linux-jail", Available: jailed, Detail: jailWhy})
	return c
}

// runtime locates (or, with Options.Install, installs) the runtime and
// prepares the worker folder and snapshot.
func (d *Driver) runtime(ctx context.Context) (files, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	rt, err := d.installed(ctx)
	if err != nil {
		return files{}, err
	}
	return prepare(ctx, rt)
}

// installed locates (or, with Options.Install, installs) the runtime;
// d.mu is held.
func (d *Driver) installed(ctx context.Context) (Runtime, error) {
	rt, err := Locate(d.opts.CacheDir)
	if err != nil && d.opts.Install {
		return Install(ctx, d.opts.CacheDir, d.opts.Progress)
	}
	return rt, err
}

// Open checks spec, makes sure the runtime and its snapshot exist, reads
// the bundle and starts the first worker, so a skill that fails to import
// fails here.
func (d *Driver) Open(ctx context.Context, spec sandbox.Spec) (sandbox.Sandbox, error) {
	if err := backend.NoContainer(Name, spec); err != nil {
		return nil, err
	}
	cg := detectCgroups(d.seams.missing)
	jailed, jailWhy := jailState(d.seams.noJail)
	if err := backend.CheckRequire(sandbox.Capabilities{Enforces: d.enforces(cg, jailed)}, Name, spec.Require); err != nil {
		return nil, err
	}
	if len(spec.Network) > 0 && !jailed {
		return nil, errdefs.New(errdefs.Unsupported,
			"backend pyodide: a network allowlist needs the linux jail and its egress proxy (%s); refusing rather than granting network to %s", jailWhy, spec.SkillID)
	}
	if len(spec.Secrets) > 0 && !jailed {
		return nil, errdefs.New(errdefs.Unsupported,
			"backend pyodide: bound secrets need the linux jail and its egress proxy (%s)", jailWhy)
	}
	if len(spec.ReadPaths) > 0 {
		return nil, errdefs.New(errdefs.Unsupported, "backend pyodide cannot expose host paths %v (only the bundle is copied in)", spec.ReadPaths)
	}
	if spec.Mode != "" && spec.Mode != sandbox.ModeSingleUse && spec.Mode != sandbox.ModeSession {
		return nil, errdefs.New(errdefs.Invalid, "unknown mode %q", spec.Mode)
	}
	reqNames, err := backend.RequirementNames(spec.Requirements)
	if err != nil {
		return nil, err
	}
	setup, err := readBundle(spec.BundleDir, worker.Environ(scratchDir, spec.Env), spec.Environment)
	if err != nil {
		return nil, err
	}
	f, err := d.runtime(ctx)
	if err != nil {
		return nil, err
	}
	b := newBox(d, f, spec, reqNames, setup)
	b.cg = cg
	if jailed {
		w, missing, err := newWorkerJail(f, spec, d.seams.upstreamRoots)
		if err != nil {
			return nil, errdefs.Wrap(errdefs.KindOf(err), err, "backend pyodide: linux jail")
		}
		b.jail = w
		for _, m := range missing {
			b.warnings = append(b.warnings, "pyodide: the linux jail runs without "+m)
		}
		for _, n := range w.trustNotes() {
			b.warnings = append(b.warnings, "pyodide: tls: "+n)
		}
	} else {
		b.warnings = append(b.warnings, "pyodide: running without the linux jail ("+jailWhy+")")
	}
	if err := b.warm(ctx); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// python names the interpreter in messages.
func python(version string) string {
	if version == "" {
		return fmt.Sprintf("Pyodide %s", PyodideVersion)
	}
	return fmt.Sprintf("Pyodide %s (Python %s)", PyodideVersion, version)
}
