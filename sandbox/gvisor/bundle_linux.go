package gvisor

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/jail"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// bundle is an OCI runtime bundle in a sandbox's private folder, and the
// folder of runsc's state for the containers run from it.
type bundle struct {
	dir   string // config.json and rootfs
	state string // runsc --root
	// config and root are what config.json was made of (a start with a
	// network grant writes its own, from them).
	config specs.Spec
	root   jail.Root
}

// roBind are the options of every read-only bind.
var roBind = []string{"rbind", "ro", "nosuid", "nodev"}

// writeBundle writes, under dir, the OCI bundle whose process is argv, run
// in root (an empty folder assembled with jail.RootMounts: nothing is
// created in an image's or the host's folders) with spec's read paths, its
// bundle at /skill (when it has one), a fresh /scratch and /tmp, and spec's
// granted variables. With a network grant (net not nil) the sandbox runs in
// the network namespace runsc is started in (no namespace of its own in
// config.json; see egress_linux.go), and the CA bundle's mount point is
// made in the root.
func writeBundle(dir string, root jail.Root, spec sandbox.Spec, argv []string, net *netGrant) (*bundle, error) {
	b := &bundle{dir: filepath.Join(dir, "bundle"), state: filepath.Join(dir, "state"), root: root}
	rootfs := filepath.Join(b.dir, "rootfs")
	for _, d := range []string{rootfs, b.state} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, errdefs.Wrap(errdefs.Internal, err, "backend gvisor: bundle")
		}
	}
	if err := os.Chmod(rootfs, 0o755); err != nil {
		return nil, errdefs.Wrap(errdefs.Internal, err, "backend gvisor: bundle")
	}
	ops, err := jail.RootMounts(root, spec.ReadPaths)
	if err != nil {
		return nil, err
	}
	// The sandbox's own folders come first: the root's mounts may not
	// cover them (jail.RootMounts leaves them out of a tree, and
	// checkReadPath refuses read paths there).
	mounts := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc"},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "noexec", "mode=755"}},
		{Destination: jail.ScratchDir, Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "noexec", "mode=1777"}},
		{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "noexec", "mode=1777"}},
	}
	if spec.BundleDir != "" {
		mounts = append(mounts, specs.Mount{Destination: jail.SkillDir, Type: "bind", Source: spec.BundleDir,
			Options: append([]string{"noexec"}, roBind...)})
	}
	for _, d := range append(ownDirs(), jail.SkillDir) {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			return nil, errdefs.Wrap(errdefs.Internal, err, "backend gvisor: bundle")
		}
	}
	_, tree := root.(jail.Tree)
	for _, op := range ops {
		if tree && op.Dst == "/tmp" {
			// An image's own /tmp (a folder in nearly every image, or a
			// file or link) would cover, read-only, the fresh tmpfs
			// mounted there above; the linux jail's own folders do
			// not include /tmp, gVisor's do.
			continue
		}
		at := filepath.Join(rootfs, op.Dst)
		if err := os.MkdirAll(filepath.Dir(at), 0o755); err != nil {
			return nil, errdefs.Wrap(errdefs.Internal, err, "backend gvisor: bundle")
		}
		switch op.Kind {
		case "symlink":
			err = os.Symlink(op.Target, at)
		case "bind":
			if op.File {
				err = os.WriteFile(at, nil, 0o644)
			} else {
				err = os.MkdirAll(at, 0o755)
			}
			mounts = append(mounts, specs.Mount{Destination: op.Dst, Type: "bind", Source: op.Src, Options: roBind})
		default:
			err = fmt.Errorf("unknown mount step %q", op.Kind)
		}
		if err != nil && !os.IsExist(err) {
			return nil, errdefs.Wrap(errdefs.Internal, err, "backend gvisor: bundle root")
		}
	}
	if net != nil {
		if err := net.place(root, ops, rootfs); err != nil {
			return nil, err
		}
	}
	namespaces := []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace},
		{Type: specs.UTSNamespace}, {Type: specs.MountNamespace}}
	if net == nil {
		namespaces = append(namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace})
	}
	none := []string{}
	config := specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			User: specs.User{UID: jail.ID, GID: jail.ID},
			Args: argv,
			Env:  root.Env(spec.Env),
			Cwd:  jail.ScratchDir,
			Capabilities: &specs.LinuxCapabilities{
				Bounding: none, Effective: none, Inheritable: none, Permitted: none, Ambient: none,
			},
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
			NoNewPrivileges: true,
		},
		Root:     &specs.Root{Path: rootfs, Readonly: true},
		Hostname: "skillbox",
		Mounts:   mounts,
		Linux: &specs.Linux{
			Namespaces: namespaces,
		},
	}
	b.config = config
	if err := writeConfig(b.dir, config); err != nil {
		return nil, err
	}
	return b, nil
}

// writeConfig writes config as dir's config.json.
func writeConfig(dir string, config specs.Spec) error {
	data, err := json.Marshal(config)
	if err != nil {
		return errdefs.Wrap(errdefs.Internal, err, "backend gvisor: config.json")
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o600); err != nil {
		return errdefs.Wrap(errdefs.Internal, err, "backend gvisor: config.json")
	}
	return nil
}

// runscCmd runs runsc on one state folder and platform, without runsc's
// own cgroups (the sandbox's are skillbox's), and without network unless
// hostNet: then the sandbox uses the network namespace runsc starts in
// (--network=host), which a grant makes private (egress_linux.go).
type runscCmd struct {
	bin, root, platform string
	hostNet             bool
}

// args is runsc's command line for the subcommand args.
func (r *runscCmd) args(args ...string) []string {
	network := "--network=none"
	if r.hostNet {
		network = "--network=host"
	}
	return append([]string{r.bin, "--root", r.root, "--platform", r.platform, network, "--ignore-cgroups"}, args...)
}

// command is the exec.Cmd of args, with a fixed environment.
func (r *runscCmd) command(ctx context.Context, args ...string) *exec.Cmd {
	argv := r.args(args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = runscEnv
	return cmd
}

// runscEnv is the whole environment runsc runs with: nothing of the host's
// reaches it (the container's environment is config.json's).
var runscEnv = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}

// deleteTimeout bounds `runsc delete --force`.
const deleteTimeout = 10 * time.Second

// delete force-deletes container id (killing what runs in it) if its state
// is still there; an unknown id is no error.
func (r *runscCmd) delete(id string) {
	if !r.has(id) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), deleteTimeout)
	defer cancel()
	cmd := r.command(ctx, "delete", "--force", id)
	cmd.WaitDelay = time.Second
	cmd.Run()
}

// has reports whether runsc's state folder still holds something of id.
func (r *runscCmd) has(id string) bool {
	ents, _ := os.ReadDir(r.root)
	for _, e := range ents {
		if n := e.Name(); len(n) >= len(id) && containsID(n, id) {
			return true
		}
	}
	return false
}

// containsID reports whether the state file name n is id's: runsc names
// them after the sandbox and container ids.
func containsID(n, id string) bool {
	for i := 0; i+len(id) <= len(n); i++ {
		if n[i:i+len(id)] == id && (i+len(id) == len(n) || !isDigit(n[i+len(id)])) {
			return true
		}
	}
	return false
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// containerID is a new container id, unique in this process.
func containerID() string {
	return "skillbox-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatUint(seq.Add(1), 10)
}
