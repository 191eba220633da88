package gvisor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/backend"
	"github.com/skillbox-dev/skillbox/internal/cgroup"
	"github.com/skillbox-dev/skillbox/internal/egress"
	"github.com/skillbox-dev/skillbox/internal/imageroot"
	"github.com/skillbox-dev/skillbox/internal/jail"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// Name is the driver's registered name.
const Name = "gvisor"

// Platforms runsc can run the sentry on.
const (
	// PlatformPtrace intercepts system calls with ptrace: it works in any
	// VM, without nested virtualisation (the default).
	PlatformPtrace = "ptrace"
	// PlatformKVM uses /dev/kvm; used only after a probe sandbox ran on it
	// within KVMProbeTimeout.
	PlatformKVM = "kvm"
)

// Allowances for gVisor's own processes (runsc, the sentry, the gofer),
// which share the sandbox's cgroup with the skill: a call's memory limit
// and pids limit are the cgroup's minus these. gVisor itself takes about
// 25 MiB and 40 threads for a Python call on these machines.
const (
	MemoryAllowance = 64 << 20
	PidsAllowance   = 64
)

// Options configure the driver. The zero value is ready to use.
type Options struct {
	// Runsc is the runsc binary; empty means runsc on PATH.
	Runsc string
	// Platform is PlatformPtrace (default) or PlatformKVM (policy file:
	// platform).
	Platform string
	// Python is the host interpreter for skills that do not run in an
	// image, when a Spec names none; empty means $SKILLBOX_PYTHON, else
	// python3 on PATH (internal/pyinterp: the same rule as every backend).
	Python string
	// ImageCache is the folder of unpacked images; empty means the cache
	// folder's "images" (internal/imageroot.Cache).
	ImageCache string
	// TempDir is where each sandbox's private folder (bundle, root,
	// runsc's state) is made; empty means os.TempDir().
	TempDir string
}

// Driver is the gvisor backend.
type Driver struct {
	opts Options
	// last is the latest trial run of a sandbox, reused briefly (probe).
	last struct {
		sync.Mutex
		at  time.Time
		err error
	}
}

// New returns a driver with opts.
func New(opts Options) *Driver {
	if opts.Platform == "" {
		opts.Platform = PlatformPtrace
	}
	return &Driver{opts: opts}
}

// Name returns "gvisor".
func (d *Driver) Name() string { return Name }

// Probe reports runsc, the platform (a trial sandbox), root, the cgroup
// controllers and the host interpreter, and what they enforce together.
func (d *Driver) Probe(ctx context.Context) sandbox.Capabilities {
	return d.probe(ctx, d.opts.Python).caps
}

// seq numbers the containers and cgroups of this process.
var seq atomic.Uint64

// Open checks the host against spec and prepares a sandbox: the OCI
// bundle every call of spec runs (a call starts its own gVisor sandbox
// from it; a session one for its calls).
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
	pr := d.probe(ctx, python)
	if err := backend.CheckRequire(pr.caps, Name, spec.Require); err != nil {
		return nil, err
	}
	grant, err := newNetGrant(spec)
	if err != nil {
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
		if !spec.BestEffort || !bestEffortLayer(l.Name) {
			return nil, errdefs.New(errdefs.Unavailable, "backend gvisor: %s is missing: %s%s", l.Name, l.Detail, bestEffortHint(l.Name))
		}
		warnings = append(warnings, fmt.Sprintf("best-effort: running without %s (%s)", l.Name, l.Detail))
	}
	if lim.CPU > 0 && !pr.layer(LayerCPU).Available {
		if !spec.BestEffort {
			return nil, errdefs.New(errdefs.Unavailable, "backend gvisor: %s is missing: %s", LayerCPU, pr.layer(LayerCPU).Detail)
		}
		warnings = append(warnings, "best-effort: CPU limit not enforced ("+pr.layer(LayerCPU).Detail+")")
	}
	for _, p := range spec.ReadPaths {
		if err := checkReadPath(p); err != nil {
			return nil, err
		}
	}
	b := &box{d: d, spec: spec, lim: lim, warnings: warnings, reqNames: reqNames, cgHost: pr.cg, runsc: pr.runsc, closed: make(chan struct{}),
		net: grant, outsideAudit: egress.AuditFrom(ctx),
		// A limit hit kills the whole gVisor sandbox (the kernel's OOM
		// killer takes the sentry; a refused thread stops it), so the call
		// looks like a dead worker.
		judge: backend.Judge{SkillID: spec.SkillID, Limits: lim,
			OOM:     "the kernel OOM killer stopped the gVisor sandbox",
			Refused: "thread creation was refused and the gVisor sandbox stopped"}}
	for _, c := range []struct{ layer, ctl string }{{LayerMemory, cgroup.Memory}, {LayerPids, cgroup.Pids}, {LayerCPU, cgroup.CPU}} {
		if pr.layer(c.layer).Available && (c.ctl != cgroup.CPU || lim.CPU > 0) {
			b.controllers = append(b.controllers, c.ctl)
		}
	}
	var root jail.Root
	if spec.Container != nil {
		c, err := imageroot.Open(ctx, d.opts.ImageCache, Name, spec)
		if err != nil {
			return nil, err
		}
		b.container, root = c, c.Root
	} else {
		b.interp, root = pr.interp, jail.HostPython{Interp: pr.interp}
	}
	ok := false
	defer func() {
		if !ok {
			b.release()
		}
	}()
	if b.dir, err = os.MkdirTemp(d.opts.TempDir, "skillbox-gvisor-"); err != nil {
		return nil, errdefs.Wrap(errdefs.Internal, err, "backend gvisor: sandbox folder")
	}
	if b.bundle, err = writeBundle(b.dir, root, spec, b.argv(root.Program()), grant); err != nil {
		return nil, err
	}
	if grant != nil {
		for _, n := range grant.notes {
			b.warnings = append(b.warnings, "tls: "+n)
		}
	}
	if b.container != nil {
		if err := b.checkPython(ctx, root); err != nil {
			return nil, err
		}
	}
	if spec.Mode == sandbox.ModeSession {
		b.run = &session{b: b}
	} else {
		b.run = &cold{b: b}
	}
	ok = true
	return b, nil
}

// bestEffortLayer reports whether Open may run without layer on the
// operator's best-effort opt-in: the cgroup limits only. Without runsc, its
// platform or root there is no sandbox at all.
func bestEffortLayer(layer string) bool { return layer == LayerMemory || layer == LayerPids }

func bestEffortHint(layer string) string {
	if bestEffortLayer(layer) {
		return " (--best-effort runs without it, with a warning on every call)"
	}
	return ""
}

// checkReadPath refuses an operator-granted read path the sandbox cannot
// show at the same path: a relative one, the root, or one that would cover
// or sit in the sandbox's own folders.
func checkReadPath(p string) error {
	if !filepath.IsAbs(p) || filepath.Clean(p) != p || p == "/" {
		return errdefs.New(errdefs.Invalid, "read path %q: must be an absolute, clean path other than /", p)
	}
	for _, own := range ownDirs() {
		if p == own || strings.HasPrefix(p, own+"/") {
			return errdefs.New(errdefs.Unsupported, "backend gvisor: read path %s would sit in the sandbox's own %s", p, own)
		}
	}
	if _, err := os.Stat(p); err != nil {
		return errdefs.New(errdefs.Invalid, "read path %s: %v", p, err)
	}
	return nil
}

// ownDirs are the folders the bundle mounts itself: the jail's, plus the
// /tmp and /sys gVisor adds.
func ownDirs() []string { return append(jail.OwnDirs(), "/tmp", "/sys") }

// interpName names the interpreter for messages.
// requirementsHint is how to run the skill on an interpreter that has
// its requirements: none for an image's (the image brings its packages).
func (b *box) requirementsHint() string {
	if b.container != nil {
		return ""
	}
	return backend.HostPythonHint(b.spec.Ref())
}

func (b *box) interpName() string {
	if b.container != nil {
		return b.container.Interpreter()
	}
	return b.interp.String()
}
