package jail

import (
	"fmt"
	"os"
	"strings"

	"github.com/skillbox-dev/skillbox/internal/jail/stage"
	"github.com/skillbox-dev/skillbox/internal/seccomp"
	"golang.org/x/sys/unix"
)

// Namespace is one namespace a jail gets, as this host offers it.
type Namespace struct {
	// Name is the layer's name: "user-namespace", "pid-namespace", ...
	Name      string
	Available bool
	Detail    string
}

// Namespaces reports the namespaces every jail gets (pid, mount, network,
// ipc, uts, cgroup), preceded by the user namespace, which a jail needs
// only when the host process is not root.
func Namespaces() []Namespace {
	return []Namespace{userNS(os.Geteuid() == 0),
		namespace("pid-namespace", "pid"), namespace("mount-namespace", "mnt"), namespace("network-namespace", "net"),
		namespace("ipc-namespace", "ipc"), namespace("uts-namespace", "uts"), namespace("cgroup-namespace", "cgroup")}
}

func namespace(name, file string) Namespace {
	if _, err := os.Stat("/proc/self/ns/" + file); err != nil {
		return Namespace{Name: name, Detail: "kernel lacks it: " + err.Error()}
	}
	return Namespace{Name: name, Available: true, Detail: "/proc/self/ns/" + file}
}

func userNS(root bool) Namespace {
	n := namespace("user-namespace", "user")
	if root {
		n.Available, n.Detail = true, fmt.Sprintf("not needed: running as root (jails drop to uid %d, which owns nothing here)", ID)
		return n
	}
	if b, err := os.ReadFile("/proc/sys/kernel/unprivileged_userns_clone"); err == nil && strings.TrimSpace(string(b)) == "0" {
		n.Available, n.Detail = false, "unprivileged user namespaces disabled (kernel.unprivileged_userns_clone=0)"
	}
	if b, err := os.ReadFile("/proc/sys/user/max_user_namespaces"); err == nil && strings.TrimSpace(string(b)) == "0" {
		n.Available, n.Detail = false, "user namespaces disabled (user.max_user_namespaces=0)"
	}
	return n
}

// Usable reports whether this host can build jails: the namespaces, and
// as a non-root user the user namespace. The error names the missing one.
func Usable() error {
	for _, n := range Namespaces() {
		if !n.Available {
			return fmt.Errorf("%s: %s", n.Name, n.Detail)
		}
	}
	return nil
}

// LandlockABI returns the kernel's Landlock ABI version, or an error when
// Landlock is missing.
func LandlockABI() (int, error) { return stage.LandlockABI() }

// Fallback is a hardening of the jail that this kernel lacks, which a
// best-effort jail goes without (Apply weakens a Spec accordingly). Not a
// layer of its own: any kernel with Landlock (5.13) has them, so only
// hosts that are best-effort already can miss them.
type Fallback struct {
	Name, Detail string
	apply        func(*Spec)
}

// Apply weakens s to run without the hardening.
func (f Fallback) Apply(s *Spec) { f.apply(s) }

// Names of the fallbacks.
const (
	// FallbackProcSubset: /proc with its process subset only (Linux 5.8).
	FallbackProcSubset = "proc-subset"
	// FallbackOverlay: the bundle shown through an overlay (overlayfs).
	FallbackOverlay = "overlayfs"
)

// Fallbacks lists what this kernel lacks of the jail's hardening; bundle
// says whether the jail shows a bundle (through overlayfs). A name in
// missing counts as lacking, with its value as the reason (a driver built
// to behave as on an older kernel).
func Fallbacks(bundle bool, missing map[string]string) []Fallback {
	var out []Fallback
	if why, ok := missing[FallbackProcSubset]; ok || !kernelAtLeast(5, 8) {
		if !ok {
			why = "/proc with " + stage.ProcOptions + " needs Linux 5.8; without it the skill reads host facts such as /proc/cmdline and /proc/meminfo"
		}
		out = append(out, Fallback{FallbackProcSubset, why, func(s *Spec) { s.ProcFull = true }})
	}
	if why, ok := missing[FallbackOverlay]; bundle && (ok || !overlayKnown()) {
		if !ok {
			why = "the kernel has no overlay file system; without it /proc/self/mountinfo shows the bundle's host path"
		}
		out = append(out, Fallback{FallbackOverlay, why, func(s *Spec) { s.BundleBind = true }})
	}
	return out
}

// BestEffort weakens spec to what this host has, for a jail that is
// defence in depth rather than the boundary: without Landlock, seccomp or
// a Fallback when the host lacks them. It returns what the jail goes
// without, each as "name (reason)".
func BestEffort(spec *Spec) (missing []string) {
	if _, err := stage.LandlockABI(); err != nil {
		missing = append(missing, "landlock ("+err.Error()+")")
		spec.NoLandlock = true
	}
	if err := seccomp.Available(); err != nil {
		missing = append(missing, "seccomp ("+err.Error()+")")
		spec.NoSeccomp = true
	}
	for _, f := range Fallbacks(spec.Bundle != "", nil) {
		missing = append(missing, f.Name+" ("+f.Detail+")")
		f.Apply(spec)
	}
	return missing
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
