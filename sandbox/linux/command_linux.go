package linux

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/skillbox-dev/skillbox/internal/egress"
	"github.com/skillbox-dev/skillbox/internal/pyinterp"
	"github.com/skillbox-dev/skillbox/internal/seccomp"
	"github.com/skillbox-dev/skillbox/sandbox"
	"golang.org/x/sys/unix"
)

// Jails for other programs. Another backend (pyodide: Deno) runs its
// worker processes in the same jail as the Python harness: new pid, mount,
// network, ipc, uts and cgroup namespaces (and a user namespace when the
// host process is not root), a tmpfs root holding read-only binds of the
// program, its ELF dependencies and JailSpec.ReadOnly only, a private
// noexec /scratch (cwd and HOME), a /proc of the jail's processes only, the
// unprivileged uid (JailID), Landlock and seccomp when the kernel has
// them, and exactly the environment the program is given. Its network namespace is empty; with
// JailSpec.Egress the init stage listens on ProxyAddr there and an
// egress.Proxy in the host process serves it (as for the harness).

// ProxyAddr is where a jail's egress proxy listens, inside the jail.
const ProxyAddr = "127.0.0.1:3128"

// JailSpec describes the jail of a program other than the Python harness.
type JailSpec struct {
	// Program is the absolute host path of the binary; it and what its
	// ELF headers need (loader, libraries) are bound read-only at their
	// host paths.
	Program string
	// ReadOnly are further host paths (files or folders) bound read-only
	// at the same paths.
	ReadOnly []string
	// ScratchBytes caps the /scratch tmpfs; 0 means 64 MiB.
	ScratchBytes int64
	// UID and GID the program runs as when the host process is root; 0
	// means JailID, which owns nothing on the host.
	UID, GID int
	// Egress, when not nil, grants the network through an egress proxy
	// that listens on ProxyAddr in the jail (one proxy per started jail);
	// the proxy's variables (HTTP_PROXY, ...) are added to the program's
	// environment.
	Egress *egress.Config
}

// Jail is a prepared jail configuration; Wrap starts programs in fresh
// jails built from it.
type Jail struct {
	base    jailConfig
	egress  *egress.Config
	missing []string
}

// JailUsable reports whether this host can build jails: the namespaces,
// and as a non-root user the user namespace. The error names the missing
// layer.
func JailUsable() error {
	for _, l := range []sandbox.Layer{userNSLayer(os.Geteuid() == 0),
		nsLayer(LayerPidNS, "pid"), nsLayer(LayerMountNS, "mnt"), nsLayer(LayerNetNS, "net"),
		nsLayer(LayerIPCNS, "ipc"), nsLayer(LayerUTSNS, "uts"), nsLayer(LayerCgroupNS, "cgroup")} {
		if !l.Available {
			return fmt.Errorf("%s: %s", l.Name, l.Detail)
		}
	}
	return nil
}

// NewJail plans the jail for spec. Landlock and seccomp are applied when
// the kernel has them; Missing names those it lacks.
func NewJail(spec JailSpec) (*Jail, error) {
	if err := JailUsable(); err != nil {
		return nil, err
	}
	if !filepath.IsAbs(spec.Program) {
		return nil, fmt.Errorf("jail: program %q is not an absolute path", spec.Program)
	}
	for _, p := range spec.ReadOnly {
		if !filepath.IsAbs(p) || filepath.Clean(p) == "/" || under(p, []string{jailSkill, jailScratch, "/proc", "/dev"}) {
			return nil, fmt.Errorf("jail: read-only path %q must be absolute, not / and outside the jail's own folders", p)
		}
	}
	paths := append([]string{spec.Program}, pyinterp.ELFDeps(spec.Program)...)
	if _, err := os.Stat("/etc/ld.so.cache"); err == nil {
		paths = append(paths, "/etc/ld.so.cache")
	}
	mounts, err := plan(append(paths, spec.ReadOnly...))
	if err != nil {
		return nil, fmt.Errorf("jail: plan mounts: %w", err)
	}
	if spec.ScratchBytes <= 0 {
		spec.ScratchBytes = 64 << 20
	}
	if spec.UID == 0 {
		spec.UID = JailID
	}
	if spec.GID == 0 {
		spec.GID = JailID
	}
	j := &Jail{base: jailConfig{
		Mounts: mounts, ScratchBytes: spec.ScratchBytes, UID: spec.UID, GID: spec.GID,
		UserNS: os.Geteuid() != 0, NoNetwork: spec.Egress == nil, OwnFDs: true,
	}}
	if _, err := landlockABI(); err != nil {
		j.missing = append(j.missing, LayerLandlock+" ("+err.Error()+")")
	} else {
		j.base.Landlock = true
	}
	if err := seccomp.Available(); err != nil {
		j.missing = append(j.missing, LayerSeccomp+" ("+err.Error()+")")
	} else {
		j.base.Seccomp = true
	}
	for _, f := range kernelFallbacks(false, nil) {
		j.missing = append(j.missing, f.name+" ("+f.detail+")")
		f.apply(&j.base)
	}
	if spec.Egress != nil {
		ec := *spec.Egress
		if ec.CAFile == "" {
			ec.CAFile = egress.DefaultCAFile
		}
		if under(filepath.Dir(ec.CAFile), mountDsts(mounts)) {
			ec.CAFile = caFileFallback
		}
		if err := ec.Validate(); err != nil {
			return nil, err
		}
		j.egress = &ec
	}
	return j, nil
}

func mountDsts(ops []mountOp) []string {
	var out []string
	for _, op := range ops {
		if op.Kind == "bind" {
			out = append(out, op.Dst)
		}
	}
	return out
}

// Missing names the hardening layers (Landlock, seccomp) this host lacks,
// which the jail then runs without.
func (j *Jail) Missing() []string { return slices.Clone(j.missing) }

// Running is the host side of one started jail: its egress proxy, if any.
// Close it once the jailed program has exited (or been killed).
type Running struct {
	mu     sync.Mutex
	proxy  *egress.Proxy
	served chan struct{}
}

// Close stops the jail's egress proxy and waits for it.
func (r *Running) Close() {
	r.mu.Lock()
	p, served := r.proxy, r.served
	r.proxy = nil
	r.mu.Unlock()
	if p != nil {
		p.Close()
		<-served
	}
}

// Wrap returns a launch function (worker.StartOptions.Launch) that starts
// cmd in a fresh jail instead of on the host: cmd.Path with cmd.Args[1:]
// and exactly cmd.Env, as pid 1 of the jail, cwd /scratch. The program
// keeps every descriptor of cmd.ExtraFiles at its usual number; the init
// stage's config socket goes after them. start starts the re-executed init
// stage (nil means cmd.Start), e.g. inside a cgroup; launch returns once
// the program was exec'd in the jail, or the reason it could not be.
// Audit events of the proxy go to egress.AuditFrom(ctx).
func (j *Jail) Wrap(ctx context.Context, cmd *exec.Cmd, start func(*exec.Cmd) error) (launch func(*exec.Cmd) error, r *Running) {
	r = &Running{}
	launch = func(cmd *exec.Cmd) error {
		if start == nil {
			start = (*exec.Cmd).Start
		}
		cfg := j.base
		cfg.Argv = append([]string{cmd.Path}, cmd.Args[1:]...)
		env := map[string]string{}
		for _, kv := range cmd.Env {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		var proxy *egress.Proxy
		if j.egress != nil {
			ec := *j.egress
			ec.Audit = egress.AuditFrom(ctx)
			p, err := egress.New(ec)
			if err != nil {
				return err
			}
			proxy = p
			defer func() {
				if proxy != nil {
					proxy.Close()
				}
			}()
			cfg.Egress = &egressJail{Port: proxyPort}
			if p.Intercepts() {
				bundle, _ := p.CABundle()
				cfg.Egress.CAFile, cfg.Egress.CA = ec.CAFile, bundle
			}
			delete(env, "NO_PROXY")
			delete(env, "no_proxy")
			maps.Copy(env, p.Env(ProxyAddr))
		}
		cfg.Env = nil
		for _, k := range slices.Sorted(maps.Keys(env)) {
			cfg.Env = append(cfg.Env, k+"="+env[k])
		}
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		parent, child := os.NewFile(uintptr(fds[0]), "jail-config"), os.NewFile(uintptr(fds[1]), "jail-config")
		defer parent.Close()
		defer child.Close()
		cmd.ExtraFiles = append(cmd.ExtraFiles, child)
		cmd.Path = "/proc/self/exe"
		cmd.Args = []string{initArg0, strconv.Itoa(2 + len(cmd.ExtraFiles))}
		cmd.Env = []string{}
		cmd.Dir = ""
		if cmd.SysProcAttr == nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{}
		}
		cmd.SysProcAttr.Cloneflags |= cloneFlags
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
		if cfg.UserNS {
			cmd.SysProcAttr.Cloneflags |= syscall.CLONE_NEWUSER
			cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
			cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
			cmd.SysProcAttr.GidMappingsEnableSetgroups = false
		}
		if err := start(cmd); err != nil {
			return err
		}
		child.Close()
		lf, err := sendConfig(parent, &cfg)
		if err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			return fmt.Errorf("linux jail: %w", err)
		}
		if proxy != nil {
			if lf == nil {
				cmd.Process.Kill()
				cmd.Wait()
				return errors.New("linux jail: no egress listener")
			}
			jl := &jail{}
			if err := jl.serveProxy(proxy, lf, egress.AuditFrom(ctx)); err != nil {
				cmd.Process.Kill()
				cmd.Wait()
				return fmt.Errorf("linux jail: egress listener: %w", err)
			}
			r.mu.Lock()
			r.proxy, r.served = jl.proxy, jl.served
			r.mu.Unlock()
			proxy = nil
		}
		return nil
	}
	return launch, r
}
