package gvisor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/skillbox-dev/skillbox/internal/cgroup"
	"github.com/skillbox-dev/skillbox/internal/jail"
	"github.com/skillbox-dev/skillbox/internal/pyinterp"
	"github.com/skillbox-dev/skillbox/sandbox"
	"golang.org/x/sys/unix"
)

// Layer names, as Probe reports them and as Unavailable errors name them.
const (
	LayerRunsc    = "runsc"
	LayerRoot     = "root"
	LayerPlatform = "platform"
	LayerMemory   = "cgroup-memory"
	LayerPids     = "cgroup-pids"
	LayerCPU      = "cgroup-cpu"
	LayerPython   = "python"
)

// Bounds of the trial sandbox Probe runs: the ptrace platform's is
// generous (a loaded machine); a KVM platform that cannot start a sandbox
// in KVMProbeTimeout is taken as not working (on some hosts runsc hangs
// on KVM) and the trial is killed.
const (
	PtraceProbeTimeout = 30 * time.Second
	KVMProbeTimeout    = 10 * time.Second
)

// trialReuse is how long a trial sandbox's outcome answers the next probe:
// one call asks three times within milliseconds (the choice of backend,
// the record of its capabilities, Open), and a trial costs a sandbox.
const trialReuse = time.Minute

// probeResult is Probe's findings plus what Open needs from them.
type probeResult struct {
	caps   sandbox.Capabilities
	runsc  string
	interp *pyinterp.Interpreter
	cg     *cgroup.Host
}

func (r *probeResult) layer(name string) sandbox.Layer { return r.caps.Layer(name) }

// missing are the layers without which Open refuses (the CPU controller
// only for a Spec with a CPU limit).
func (r *probeResult) missing() []sandbox.Layer {
	var out []sandbox.Layer
	for _, l := range r.caps.Layers {
		if !l.Available && l.Name != LayerCPU {
			out = append(out, l)
		}
	}
	return out
}

// probe inspects the host; python is the interpreter to resolve.
func (d *Driver) probe(ctx context.Context, python string) *probeResult {
	r := &probeResult{}
	var layers []sandbox.Layer
	runsc := d.opts.Runsc
	if runsc == "" {
		runsc = "runsc"
	}
	path, err := exec.LookPath(runsc)
	if err != nil {
		layers = append(layers, sandbox.Layer{Name: LayerRunsc, Detail: fmt.Sprintf("%s not found (Debian: apt-get install runsc)", runsc)})
	} else {
		r.runsc = path
		layers = append(layers, sandbox.Layer{Name: LayerRunsc, Available: true, Detail: path + " " + runscVersion(ctx, path)})
	}
	if os.Geteuid() != 0 {
		layers = append(layers, sandbox.Layer{Name: LayerRoot, Detail: "runsc needs root to make its sandboxes (its rootless mode gives up isolation, so skillbox does not use it)"})
	} else {
		layers = append(layers, sandbox.Layer{Name: LayerRoot, Available: true, Detail: "running as root"})
	}
	cg, cerr := cgroup.Detect()
	for _, c := range []struct{ layer, ctl string }{{LayerMemory, cgroup.Memory}, {LayerPids, cgroup.Pids}, {LayerCPU, cgroup.CPU}} {
		if cerr != nil {
			layers = append(layers, sandbox.Layer{Name: c.layer, Detail: cerr.Error()})
			continue
		}
		v, dir := cg.Where(c.ctl)
		l := sandbox.Layer{Name: c.layer, Available: v != 0, Detail: cg.Describe(c.ctl)}
		if v != 0 && unix.Access(dir, unix.W_OK) != nil {
			l.Available, l.Detail = false, l.Detail+": not writable by this user"
		}
		layers = append(layers, l)
	}
	if cerr == nil {
		r.cg = cg
	}
	platform := sandbox.Layer{Name: LayerPlatform}
	switch {
	case r.runsc == "" || os.Geteuid() != 0:
		platform.Detail = d.opts.Platform + ": not tried (no runsc, or not root)"
	default:
		if err := d.trial(ctx, r.runsc); err != nil {
			platform.Detail = d.opts.Platform + ": " + err.Error()
		} else {
			platform.Available, platform.Detail = true, d.opts.Platform+": a trial sandbox ran"
		}
	}
	layers = append(layers, platform)
	in, perr := pyinterp.Resolve(ctx, python)
	if perr != nil {
		layers = append(layers, sandbox.Layer{Name: LayerPython, Detail: perr.Error()})
	} else {
		r.interp = in
		layers = append(layers, sandbox.Layer{Name: LayerPython, Available: true, Detail: in.String()})
	}
	r.caps.Layers = layers
	r.caps.Isolating = true
	miss := r.missing()
	r.caps.Available = len(miss) == 0
	if !r.caps.Available {
		var names []string
		r.caps.BestEffort = true
		for _, l := range miss {
			names = append(names, l.Name+" ("+l.Detail+")")
			if !bestEffortLayer(l.Name) {
				r.caps.BestEffort = false
			}
		}
		r.caps.Reason = "missing " + strings.Join(names, ", ")
	}
	r.caps.Enforces = r.enforces()
	return r
}

// enforces lists the features the available layers add up to. Network
// grants go through the egress proxy in a network namespace of each
// sandbox's own (egress_linux.go), which needs root, as runsc does.
func (r *probeResult) enforces() []sandbox.Feature {
	if !r.layer(LayerRunsc).Available || !r.layer(LayerRoot).Available || !r.layer(LayerPlatform).Available {
		return []sandbox.Feature{}
	}
	f := []sandbox.Feature{sandbox.FeatureTimeout, sandbox.FeatureOutputCap, sandbox.FeatureEnvScrub,
		sandbox.FeatureNoNetwork, sandbox.FeatureNetAllowlist, sandbox.FeatureSecretBinding,
		sandbox.FeatureFSIsolation, sandbox.FeatureProcIsolation, sandbox.FeatureKernelHardened}
	if r.layer(LayerMemory).Available {
		f = append(f, sandbox.FeatureMemory)
	}
	if r.layer(LayerPids).Available {
		f = append(f, sandbox.FeaturePids)
	}
	if r.layer(LayerCPU).Available {
		f = append(f, sandbox.FeatureCPU)
	}
	return f
}

// runscVersion is the first line of `runsc --version`.
func runscVersion(ctx context.Context, runsc string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, runsc, "--version").Output()
	if err != nil {
		return "(--version failed)"
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return "(" + strings.TrimSpace(line) + ")"
}

// trial runs a sandbox of the driver's platform whose process is the
// host's true(1) (with its loader and libraries: jail.Binary), bounded by
// the platform's probe timeout, or returns the outcome of one run less
// than trialReuse ago.
func (d *Driver) trial(ctx context.Context, runsc string) error {
	d.last.Lock()
	defer d.last.Unlock()
	if !d.last.at.IsZero() && time.Since(d.last.at) < trialReuse {
		return d.last.err
	}
	err := d.trialRun(ctx, runsc)
	d.last.at, d.last.err = time.Now(), err
	return err
}

func (d *Driver) trialRun(ctx context.Context, runsc string) error {
	bound := PtraceProbeTimeout
	if d.opts.Platform == PlatformKVM {
		bound = KVMProbeTimeout
	}
	truePath, err := exec.LookPath("true")
	if err != nil {
		return fmt.Errorf("no true(1) to run in a trial sandbox: %v", err)
	}
	dir, err := os.MkdirTemp(d.opts.TempDir, "skillbox-gvisor-probe-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	root := jail.Binary{Path: truePath}
	bundle, err := writeBundle(dir, root, sandbox.Spec{}, []string{truePath}, nil)
	if err != nil {
		return err
	}
	rs := &runscCmd{bin: runsc, root: bundle.state, platform: d.opts.Platform}
	id := containerID()
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	var stderr bytes.Buffer
	cmd := rs.command(ctx, "run", "--bundle", bundle.dir, id)
	cmd.Stderr = &stderr
	cmd.WaitDelay = time.Second
	err = cmd.Run()
	rs.delete(id)
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("a trial sandbox did not finish within %v (killed)", bound)
	case err != nil:
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 300 {
			msg = msg[len(msg)-300:]
		}
		return fmt.Errorf("a trial sandbox failed: %v: %s", err, msg)
	}
	return nil
}
