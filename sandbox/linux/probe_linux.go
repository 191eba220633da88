package linux

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/skillbox-dev/skillbox/internal/cgroup"
	"github.com/skillbox-dev/skillbox/internal/pyinterp"
	"github.com/skillbox-dev/skillbox/internal/seccomp"
	"github.com/skillbox-dev/skillbox/sandbox"
	"golang.org/x/sys/unix"
)

// Layer names, as Probe reports them and as Unavailable errors name them.
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
	userNS bool // the host process is not root: jails need a user namespace
}

func (r *probeResult) layer(name string) sandbox.Layer {
	for _, l := range r.caps.Layers {
		if l.Name == name {
			return l
		}
	}
	return sandbox.Layer{Name: name}
}

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

func nsLayer(name, file string) sandbox.Layer {
	if _, err := os.Stat("/proc/self/ns/" + file); err != nil {
		return sandbox.Layer{Name: name, Detail: "kernel lacks it: " + err.Error()}
	}
	return sandbox.Layer{Name: name, Available: true, Detail: "/proc/self/ns/" + file}
}

func userNSLayer(root bool) sandbox.Layer {
	l := nsLayer(LayerUserNS, "user")
	if root {
		l.Available, l.Detail = true, fmt.Sprintf("not needed: running as root (jails drop to uid %d, which owns nothing here)", JailID)
		return l
	}
	if b, err := os.ReadFile("/proc/sys/kernel/unprivileged_userns_clone"); err == nil && strings.TrimSpace(string(b)) == "0" {
		l.Available, l.Detail = false, "unprivileged user namespaces disabled (kernel.unprivileged_userns_clone=0)"
	}
	if b, err := os.ReadFile("/proc/sys/user/max_user_namespaces"); err == nil && strings.TrimSpace(string(b)) == "0" {
		l.Available, l.Detail = false, "user namespaces disabled (user.max_user_namespaces=0)"
	}
	return l
}

// probe inspects the host; python is the interpreter to resolve.
func (d *Driver) probe(ctx context.Context, python string) *probeResult {
	r := &probeResult{userNS: os.Geteuid() != 0}
	layers := []sandbox.Layer{
		userNSLayer(!r.userNS),
		nsLayer(LayerPidNS, "pid"), nsLayer(LayerMountNS, "mnt"), nsLayer(LayerNetNS, "net"),
		nsLayer(LayerIPCNS, "ipc"), nsLayer(LayerUTSNS, "uts"), nsLayer(LayerCgroupNS, "cgroup"),
	}
	if err := seccomp.Available(); err != nil {
		layers = append(layers, sandbox.Layer{Name: LayerSeccomp, Detail: err.Error()})
	} else {
		layers = append(layers, sandbox.Layer{Name: LayerSeccomp, Available: true, Detail: "seccomp-bpf filters"})
	}
	if abi, err := landlockABI(); err != nil {
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
			Detail: in.String() + "; its environment's key for trusted_environments: " + EnvironmentKey(in)})
	}
	if d.fakeMissing != nil {
		for i := range layers {
			if why, ok := d.fakeMissing[layers[i].Name]; ok {
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

// fallback is a hardening of the jail that this kernel lacks, which a
// best-effort run goes without (apply weakens the config accordingly). Not
// probe layers: any kernel with Landlock (5.13) has them, so only hosts
// that are best-effort already can miss them.
type fallback struct {
	name, detail string
	apply        func(*jailConfig)
}

// Names of the fallbacks (fakeMissing keys in tests).
const (
	hardProcSubset = "proc-subset"
	hardOverlay    = "overlayfs"
)

// kernelFallbacks lists what this kernel lacks of the jail's hardening;
// bundle says whether the jail shows a bundle (through overlayfs).
func kernelFallbacks(bundle bool, fake map[string]string) []fallback {
	var out []fallback
	if why, ok := fake[hardProcSubset]; ok || !kernelAtLeast(5, 8) {
		if !ok {
			why = "/proc with " + procOptions + " needs Linux 5.8; without it the skill reads host facts such as /proc/cmdline and /proc/meminfo"
		}
		out = append(out, fallback{hardProcSubset, why, func(c *jailConfig) { c.ProcFull = true }})
	}
	if why, ok := fake[hardOverlay]; bundle && (ok || !overlayKnown()) {
		if !ok {
			why = "the kernel has no overlay file system; without it /proc/self/mountinfo shows the bundle's host path"
		}
		out = append(out, fallback{hardOverlay, why, func(c *jailConfig) { c.BundleBind = true }})
	}
	return out
}

// kernelAtLeast reports whether the running kernel is major.minor or later.
func kernelAtLeast(major, minor int) bool {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return false
	}
	var ma, mi int
	if _, err := fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &ma, &mi); err != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}

// overlayKnown reports whether the kernel has overlayfs, loaded or as a
// module it loads on the first mount.
func overlayKnown() bool {
	if b, err := os.ReadFile("/proc/filesystems"); err == nil && strings.Contains(string(b), "\toverlay\n") {
		return true
	}
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	mods := "/lib/modules/" + unix.ByteSliceToString(u.Release[:]) + "/kernel/fs/overlayfs"
	_, err := os.Stat(mods)
	return err == nil
}

// unixAccess reports whether this user may create groups in dir.
func unixAccess(dir string) error { return unix.Access(dir, unix.W_OK) }
