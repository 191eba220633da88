package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// A peer is another sandbox, run around the bare baseline (a fresh
// sandbox per call, as each is normally used for a one-off command), with
// no network beyond its own loopback.
type peer struct {
	name    string
	binary  string
	pkg     string // the Debian package that installs it
	root    bool   // needs root
	label   string
	command func(h PeerHost, bin string) ([]string, error)
}

// peers are the known peers, in the order of the table.
var peers = []peer{
	{name: "bwrap", binary: "bwrap", pkg: "bubblewrap", label: "bubblewrap, fresh sandbox per call", command: bwrapArgv},
	{name: "firejail", binary: "firejail", pkg: "firejail", label: "firejail --net=none (default profile)", command: firejailArgv},
	{name: "runc", binary: "runc", pkg: "runc", root: true, label: "runc run (OCI bundle, host /usr read-only)", command: runcArgv},
	{name: "runsc", binary: "runsc", pkg: "runsc", root: true, label: "gVisor runsc run --platform=ptrace (same bundle)", command: runscArgv},
}

// PeerNames are the peers PeerModes knows, in order.
func PeerNames() []string {
	names := make([]string, len(peers))
	for i, p := range peers {
		names[i] = p.name
	}
	return names
}

// PeerHost is what the peer modes need from the host: the bare baseline
// to wrap, a folder of their own (OCI bundles, state), a way to find
// binaries and whether this process is root.
type PeerHost struct {
	Python Python
	// Prefixes are folders the interpreter needs beyond /usr (its
	// sys.base_prefix, for a Python built elsewhere), bound read-only.
	Prefixes []string
	Tmp      string
	LookPath func(string) (string, error)
	Root     bool
}

// PeerModes returns a Process mode for each of names (known peers, see
// PeerNames): one that cannot run here (not installed, needs root, its
// setup failed, an unknown name) is a mode with Skip saying why and how
// to install it.
func PeerModes(h PeerHost, names []string) []Mode {
	var out []Mode
	for _, name := range names {
		p, ok := findPeer(name)
		if !ok {
			out = append(out, Mode{Name: name, Kind: Process, Skip: fmt.Sprintf("unknown peer (known: %s)", strings.Join(PeerNames(), ", "))})
			continue
		}
		m := Mode{Name: p.label, Kind: Process}
		bin, err := h.LookPath(p.binary)
		switch {
		case err != nil:
			m.Skip = fmt.Sprintf("%s not installed (apt-get install %s)", p.binary, p.pkg)
		case p.root && !h.Root:
			m.Skip = p.binary + " needs root here"
		default:
			if m.Argv, err = p.command(h, bin); err != nil {
				m.Skip = "setup: " + err.Error()
			}
		}
		out = append(out, m)
	}
	return out
}

func findPeer(name string) (peer, bool) {
	for _, p := range peers {
		if p.name == name {
			return p, true
		}
	}
	return peer{}, false
}

// roBinds are the folders every peer binds read-only: /usr (with the
// merged-/usr links beside it), the interpreter's prefixes outside /usr and
// the skill.
func (h PeerHost) roBinds() []string {
	binds := []string{"/usr"}
	for _, p := range h.Prefixes {
		if p != "" && p != "/usr" && !strings.HasPrefix(p, "/usr/") {
			binds = append(binds, p)
		}
	}
	return append(binds, h.Python.Dir)
}

// usrLinks are the merged-/usr links of a Debian root.
var usrLinks = [][2]string{{"usr/bin", "/bin"}, {"usr/sbin", "/sbin"}, {"usr/lib", "/lib"}, {"usr/lib64", "/lib64"}}

// bwrapArgv: a new sandbox per call, every namespace unshared (no network
// beyond loopback), /usr and the skill read-only, a fresh /tmp, /proc and
// /dev, an empty environment; bubblewrap's usual command line for a tool.
func bwrapArgv(h PeerHost, bin string) ([]string, error) {
	argv := []string{bin}
	for _, d := range h.roBinds() {
		argv = append(argv, "--ro-bind", d, d)
	}
	for _, l := range usrLinks {
		argv = append(argv, "--symlink", l[0], l[1])
	}
	argv = append(argv, "--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache",
		"--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
		"--unshare-all", "--die-with-parent", "--new-session", "--clearenv", "--setenv", "PATH", "/usr/bin:/bin")
	return append(argv, h.Python.Argv()...), nil
}

// firejailArgv: firejail as a user runs a program with it, its default
// profile, no network.
func firejailArgv(h PeerHost, bin string) ([]string, error) {
	return append([]string{bin, "--quiet", "--net=none"}, h.Python.Argv()...), nil
}

// runcArgv: `runc run` of a bundle made here (no image registry needed):
// an empty read-only root with /usr, the interpreter and the skill bound
// read-only, new pid, mount, ipc, uts and network namespaces (loopback
// only), runc's default capabilities and masked paths; the container is
// deleted when it exits.
func runcArgv(h PeerHost, bin string) ([]string, error) {
	bundle, err := h.bundle()
	if err != nil {
		return nil, err
	}
	return RuncRun(bin, filepath.Join(h.Tmp, "runc-state"), bundle, "skillbox-compare-"+strconv.Itoa(os.Getpid()), 0), nil
}

// RuncRun is the command line of `runc run` of the bundle in folder bundle
// in the foreground (the container's standard streams are the command's;
// it is deleted when it exits), runc's state in state; preserveFDs passes
// descriptors 3 to 3+preserveFDs-1 on to the container's process.
func RuncRun(bin, state, bundle, id string, preserveFDs int) []string {
	argv := []string{bin, "--root", state, "run", "--bundle", bundle}
	if preserveFDs > 0 {
		argv = append(argv, "--preserve-fds", strconv.Itoa(preserveFDs))
	}
	return append(argv, id)
}

// runscArgv: gVisor's runsc on the same bundle, with the ptrace platform
// (the one that works in a VM without nested virtualisation; KVM needs
// /dev/kvm) and no network.
func runscArgv(h PeerHost, bin string) ([]string, error) {
	bundle, err := h.bundle()
	if err != nil {
		return nil, err
	}
	state := filepath.Join(h.Tmp, "runsc-state")
	return []string{bin, "--root", state, "--platform=ptrace", "--network=none", "run", "--bundle", bundle, "skillbox-compare-" + strconv.Itoa(os.Getpid())}, nil
}

// bundle writes (once) an OCI bundle under h.Tmp whose process is the bare
// baseline, in an empty root with h.roBinds and the merged-/usr links, and
// returns its folder.
func (h PeerHost) bundle() (string, error) {
	dir := filepath.Join(h.Tmp, "oci-bundle")
	if _, err := os.Stat(filepath.Join(dir, "config.json")); err == nil {
		return dir, nil
	}
	return dir, WriteOCIBundle(dir, OCIBundle{Args: h.Python.Argv(), Env: []string{"PATH=/usr/bin:/bin"}, Binds: h.roBinds(), Links: usrLinks})
}

// OCIBundle is an OCI runtime bundle for one process: a read-only root,
// new pid, mount, ipc, uts and network namespaces (loopback only), a fresh
// /proc, /dev and /tmp, runc's default capabilities and masked paths, uid
// 0 of the container, no_new_privs.
type OCIBundle struct {
	// Rootfs is the root file system (an absolute path, not written to
	// but for the mount points runc makes in it); "" makes an empty one
	// in the bundle's folder.
	Rootfs string
	// Args and Env are the process's; its working folder is /.
	Args, Env []string
	// Binds are host folders bound read-only at the same path.
	Binds []string
	// Links are symbolic links (target, name) made in an empty root.
	Links [][2]string
}

// WriteOCIBundle writes b's config.json (and an empty root if b has none)
// into the folder dir.
func WriteOCIBundle(dir string, b OCIBundle) error {
	rootfs := b.Rootfs
	if rootfs == "" {
		rootfs = filepath.Join(dir, "rootfs")
		for _, d := range append([]string{"/proc", "/dev", "/tmp"}, b.Binds...) {
			if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
				return err
			}
		}
		for _, l := range b.Links {
			if err := os.Symlink(l[0], filepath.Join(rootfs, l[1])); err != nil {
				return err
			}
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	mounts := []map[string]any{
		{"destination": "/proc", "type": "proc", "source": "proc"},
		{"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
		{"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": []string{"nosuid", "nodev", "mode=1777"}},
	}
	for _, d := range b.Binds {
		mounts = append(mounts, map[string]any{"destination": d, "type": "bind", "source": d, "options": []string{"rbind", "ro", "nosuid", "nodev"}})
	}
	caps := []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
	config := map[string]any{
		"ociVersion": "1.0.2",
		"process": map[string]any{
			"terminal": false, "user": map[string]any{"uid": 0, "gid": 0},
			"args": b.Args, "env": b.Env, "cwd": "/",
			"capabilities":    map[string]any{"bounding": caps, "effective": caps, "permitted": caps},
			"rlimits":         []map[string]any{{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}},
			"noNewPrivileges": true,
		},
		"root":     map[string]any{"path": rootfs, "readonly": true},
		"hostname": "skillbox-compare",
		"mounts":   mounts,
		"linux": map[string]any{
			"namespaces": []map[string]string{{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}},
			"maskedPaths": []string{"/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
				"/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"},
			"readonlyPaths": []string{"/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
	j, err := json.MarshalIndent(config, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "config.json"), j, 0o644)
}
