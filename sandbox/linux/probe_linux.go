package linux

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/skillbox-dev/skillbox/internal/cgroup"
	"github.com/skillbox-dev/skillbox/internal/jail"
	"github.com/skillbox-dev/skillbox/internal/pyinterp"
	"github.com/skillbox-dev/skillbox/internal/seccomp"
	"github.com/skillbox-dev/skillbox/sandbox"
	"golang.org/x/sys/unix"
)

// Layer names, as Probe reports them and as Unavailable errors name them.
// The namespaces' are internal/jail's (jail.Namespaces).
const (
	LayerUserNS   = "user-namespace"
	LayerPidNS    = "pid-namespace"
	LayerMountNS  = "mount-namespace"
	LayerNetNS    = "network-namespace"
	LayerIPCNS    = "ipc-namespace"
	LayerUTSNS    = "uts-namespace"
	LayerCgroupNS = "cgroup-namespace"
	LayerSeccomp  = "seccomp"
	LayerLandlock = "landlock"
	LayerMemory   = "cgroup-memory"
	LayerPids     = "cgroup-pids"
	LayerCPU      = "cgroup-cpu"
	LayerPython   = "python"
)

// probeResult is Probe's findings plus what Open needs from them.
type probeResult struct {
	caps   sandbox.Capabilities
	interp *pyinterp.Interpreter
	cg     *cgroup.Host
}

func (r *probeResult) layer(name string) sandbox.Layer { return r.caps.Layer(name) }

// mandatory are the layers without which Open refuses (unless best-effort).
// The user namespace is mandatory only for a non-root host process.
func (r *probeResult) missing() []sandbox.Layer {
	var out []sandbox.Layer
	for _, l := range r.caps.Layers {
		if l.Available || l.Name == LayerCPU {
			continue
		}
		out = append(out, l)
	}
	return out
}

// probeReuse is how long a probe's findings answer the next probe for the
// same interpreter. One call asks three times within milliseconds (the
// choice of backend, the record of its capabilities, Open); the host's
// layers do not change in between, and a layer that vanished anyway makes
// the jail's setup fail rather than run without it (each layer is applied
// for real, and its failure is an error).
const probeReuse = time.Second

// probe inspects the host, or returns the findings of a probe for the same
// interpreter made less than probeReuse ago; python is the interpreter to
// resolve. The result is shared: callers do not modify it.
func (d *Driver) probe(ctx context.Context, python string) *probeResult {
	d.last.Lock()
	defer d.last.Unlock()
	if r := d.last.r; r != nil && d.last.python == python && time.Since(d.last.at) < probeReuse {
		return r
	}
	r := d.probeHost(ctx, python)
	d.last.python, d.last.at, d.last.r = python, time.Now(), r
	return r
}

// probeHost inspects the host; python is the interpreter to resolve.
func (d *Driver) probeHost(ctx context.Context, python string) *probeResult {
	r := &probeResult{}
	var layers []sandbox.Layer
	for _, n := range jail.Namespaces() {
		layers = append(layers, sandbox.Layer{Name: n.Name, Available: n.Available, Detail: n.Detail})
	}
	if err := seccomp.Available(); err != nil {
		layers = append(layers, sandbox.Layer{Name: LayerSeccomp, Detail: err.Error()})
	} else {
		layers = append(layers, sandbox.Layer{Name: LayerSeccomp, Available: true, Detail: "seccomp-bpf filters"})
	}
	if abi, err := jail.LandlockABI(); err != nil {
		layers = append(layers, sandbox.Layer{Name: LayerLandlock, Detail: err.Error()})
	} else {
		detail := fmt.Sprintf("ABI %d", abi)
		if abi < 4 {
			detail += " (no TCP rules: the empty network namespace alone blocks the network)"
		}
		if abi >= 6 {
			detail += ", abstract unix sockets and signals scoped"
		}
		layers = append(layers, sandbox.Layer{Name: LayerLandlock, Available: true, Detail: detail})
	}
	cg, err := cgroup.Detect()
	for _, c := range []struct{ layer, ctl string }{{LayerMemory, cgroup.Memory}, {LayerPids, cgroup.Pids}, {LayerCPU, cgroup.CPU}} {
		switch {
		case err != nil:
			layers = append(layers, sandbox.Layer{Name: c.layer, Detail: err.Error()})
		default:
			v, dir := cg.Where(c.ctl)
			l := sandbox.Layer{Name: c.layer, Available: v != 0, Detail: cg.Describe(c.ctl)}
			if v != 0 && unixAccess(dir) != nil {
				l.Available, l.Detail = false, l.Detail+": not writable by this user"
			}
			layers = append(layers, l)
		}
	}
	if err == nil {
		r.cg = cg
	}
	in, perr := pyinterp.Resolve(ctx, python)
	if perr != nil {
		layers = append(layers, sandbox.Layer{Name: LayerPython, Detail: perr.Error()})
	} else {
		r.interp = in
		layers = append(layers, sandbox.Layer{Name: LayerPython, Available: true,
			Detail: in.String() + "; its environment's key for trusted_environments: " + environmentKey(in)})
	}
	if d.seams.missing != nil {
		for i := range layers {
			if why, ok := d.seams.missing[layers[i].Name]; ok {
				layers[i].Available, layers[i].Detail = false, why
			}
		}
	}
	r.caps.Layers = layers
	r.caps.Isolating = true
	miss := r.missing()
	r.caps.Available = len(miss) == 0
	if !r.caps.Available {
		var names []string
		for _, l := range miss {
			names = append(names, l.Name+" ("+l.Detail+")")
		}
		r.caps.Reason = "missing " + strings.Join(names, ", ")
		// With the operator's best-effort opt-in, Open runs without the
		// kernel-hardening and cgroup layers; without a namespace or the
		// interpreter there is no jail to run at all.
		r.caps.BestEffort = true
		for _, l := range miss {
			switch l.Name {
			case LayerSeccomp, LayerLandlock, LayerMemory, LayerPids:
			default:
				r.caps.BestEffort = false
			}
		}
	}
	r.caps.Enforces = r.enforces()
	return r
}

// enforces lists the features the available layers add up to.
func (r *probeResult) enforces() []sandbox.Feature {
	has := func(names ...string) bool {
		for _, n := range names {
			if !r.layer(n).Available {
				return false
			}
		}
		return true
	}
	f := []sandbox.Feature{sandbox.FeatureTimeout, sandbox.FeatureOutputCap, sandbox.FeatureEnvScrub}
	if has(LayerMemory) {
		f = append(f, sandbox.FeatureMemory)
	}
	if has(LayerPids) {
		f = append(f, sandbox.FeaturePids)
	}
	if has(LayerCPU) {
		f = append(f, sandbox.FeatureCPU)
	}
	if has(LayerNetNS) {
		// A network grant keeps the empty namespace and reaches only the
		// host-side egress proxy, which holds the secrets' values.
		f = append(f, sandbox.FeatureNoNetwork, sandbox.FeatureNetAllowlist, sandbox.FeatureSecretBinding)
	}
	if has(LayerMountNS, LayerLandlock) {
		f = append(f, sandbox.FeatureFSIsolation)
	}
	if has(LayerPidNS, LayerIPCNS) {
		f = append(f, sandbox.FeatureProcIsolation)
	}
	if has(LayerSeccomp) {
		f = append(f, sandbox.FeatureKernelHardened)
	}
	return f
}

// unixAccess reports whether this user may create groups in dir.
func unixAccess(dir string) error { return unix.Access(dir, unix.W_OK) }
