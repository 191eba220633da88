package jail

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/cgroup"
	"github.com/skillbox-dev/skillbox/internal/egress"
	"github.com/skillbox-dev/skillbox/internal/jail/stage"
	"github.com/skillbox-dev/skillbox/internal/worker"
	"golang.org/x/sys/unix"
)

// cloneFlags are the namespaces every jail gets. A user namespace is
// added when the host process is not root.
const cloneFlags = syscall.CLONE_NEWPID | syscall.CLONE_NEWNS | syscall.CLONE_NEWNET |
	syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS | syscall.CLONE_NEWCGROUP

// caFileFallback is where the trust bundle goes when a bind (or a
// symlink the root recreates) covers the folder of the CA file's usual
// path; the bundle is then also bound over that path when a bind shows a
// file there (caOver).
const caFileFallback = "/.skillbox-egress/ca.pem"

// Spec describes a jail. The zero value of every hardening field is the
// strongest; each weakening is explicit.
type Spec struct {
	// Root provides the read-only part of the root and the program.
	Root Root
	// ReadPaths are further host paths shown read-only at the same paths
	// (the operator's read paths): absolute, clean, not / and outside the
	// jail's own folders.
	ReadPaths []string
	// Bundle is a host folder shown read-only and noexec at SkillDir,
	// through an overlay whose only real layer it is (so no mount table
	// shows its host path); "" means none.
	Bundle string
	// ScratchBytes caps the ScratchDir tmpfs; 0 means 64 MiB.
	ScratchBytes int64
	// UID and GID the program runs as when the host process is root; 0
	// means an id of this Jail's own (NewID), which every process it
	// starts shares.
	UID, GID int
	// Nproc sets RLIMIT_NPROC when non-zero (for hosts without a pids
	// cgroup).
	Nproc int
	// Env are the variables granted to the program; Root.Env makes its
	// whole environment of them.
	Env map[string]string
	// Egress, when not nil, grants the network through an egress proxy in
	// the host process (one per started jail) that serves a listener on
	// ProxyAddr inside the jail; the proxy's variables (HTTP_PROXY, ...)
	// are granted too, and NO_PROXY is not. The jail trusts one CA
	// bundle, read-only at its CAFile (default egress.DefaultCAFile,
	// /etc/ssl/certs/ca-certificates.crt), where SSL_CERT_FILE,
	// REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE point: the host's bundle, the
	// operator's CACerts and, when the proxy intercepts TLS, its CA. New
	// builds all but the last once; each start adds its proxy's CA.
	Egress *egress.Config
	// OwnFDs gives the program's descriptors from 3 on (pipes the host
	// made) to UID and GID, for a program that reopens them through
	// /dev/fd.
	OwnFDs bool
	// Tmpfs are further empty, writable tmpfs file systems (nosuid,
	// nodev, noexec), owned by UID and GID, each at its Path: absolute,
	// clean, not /, outside the jail's own folders, and neither below nor
	// above a read-only path (the root's binds and ReadPaths).
	Tmpfs []TmpfsMount
	// WriteFDs are descriptors of the program (3 on: cmd.ExtraFiles) that
	// are host folders it may write beneath, though no path in the jail
	// reaches them: Landlock allows writing under exactly those folders.
	WriteFDs []int

	// NoLandlock and NoSeccomp run without those layers (hosts that lack
	// them, by the operator's best-effort opt-in).
	NoLandlock, NoSeccomp bool
	// ProcFull mounts all of /proc rather than its process subset, and
	// BundleBind binds the bundle rather than showing it through an
	// overlay (Fallbacks: kernels without those).
	ProcFull, BundleBind bool
}

// Jail is a prepared jail: its root planned, its hardening decided.
// Launch starts a program in a fresh jail built from it, as often as asked.
type Jail struct {
	base   config
	root   Root
	env    map[string]string
	egress *egress.Config
	// trust is the CA bundle without a proxy's CA (egress
	// Config.TrustBundle); caOver, when set, is a file of a bind that the
	// bundle is bound over; notes say what the bundle lacks.
	trust  []byte
	caOver string
	notes  []string
}

// New plans the jail of spec.
func New(spec Spec) (*Jail, error) {
	if spec.Root == nil {
		return nil, errdefs.New(errdefs.Invalid, "jail: no root")
	}
	for _, p := range spec.ReadPaths {
		if !filepath.IsAbs(p) || filepath.Clean(p) != p || p == "/" || under(p, OwnDirs()) {
			return nil, errdefs.New(errdefs.Invalid, "jail: read path %q must be absolute, clean, not / and outside the jail's own folders", p)
		}
	}
	mounts, err := RootMounts(spec.Root, spec.ReadPaths)
	if err != nil {
		return nil, err
	}
	if err := checkTmpfs(spec.Tmpfs, append(mountDsts(mounts), spec.ReadPaths...)); err != nil {
		return nil, err
	}
	for _, fd := range spec.WriteFDs {
		if fd < 3 {
			return nil, errdefs.New(errdefs.Invalid, "jail: writable descriptor %d is not one of the program's extra files (3 on)", fd)
		}
	}
	if spec.ScratchBytes <= 0 {
		spec.ScratchBytes = 64 << 20
	}
	if spec.UID == 0 || spec.GID == 0 {
		id := NewID()
		if spec.UID == 0 {
			spec.UID = id
		}
		if spec.GID == 0 {
			spec.GID = id
		}
	}
	j := &Jail{root: spec.Root, env: spec.Env, base: config{
		Mounts: mounts, Bundle: spec.Bundle, ScratchBytes: spec.ScratchBytes,
		UID: spec.UID, GID: spec.GID, UserNS: os.Geteuid() != 0, Nproc: spec.Nproc,
		Landlock: !spec.NoLandlock, Seccomp: !spec.NoSeccomp, ProcFull: spec.ProcFull, BundleBind: spec.BundleBind,
		NoNetwork: spec.Egress == nil, OwnFDs: spec.OwnFDs, Tmpfs: spec.Tmpfs, WriteFDs: spec.WriteFDs,
	}}
	if spec.Egress != nil {
		ec := *spec.Egress
		if ec.CAFile == "" {
			ec.CAFile = egress.DefaultCAFile
		}
		if err := ec.Validate(); err != nil {
			return nil, err
		}
		j.caOver, j.notes = PlaceTrust(spec.Root, mounts, &ec)
		var note string
		j.trust, note = ec.TrustBundle()
		if note != "" {
			j.notes = append(j.notes, note)
		}
		j.egress = &ec
	}
	return j, nil
}

// PlaceTrust decides where a root assembled by mounts (RootMounts of
// root) shows the CA bundle of a network grant: at ec.CAFile (default
// egress.DefaultCAFile) on the root's own writable layer when no bind or
// symlink of the root covers its folder; else ec.CAFile becomes a fallback
// path outside them, and over, when a bind shows a regular file at the
// usual path (never an image's), is where the bundle is also bound. notes
// say where it could not be shown. The jail follows it; so does a runtime
// that assembles a root of its own (the gvisor backend's OCI bundle).
func PlaceTrust(root Root, mounts []MountOp, ec *egress.Config) (over string, notes []string) {
	if ec.CAFile == "" {
		ec.CAFile = egress.DefaultCAFile
	}
	_, isTree := root.(Tree)
	// The bundle is written on the root tmpfs: not below a bind, nor
	// through a symlink the root recreates.
	// An image's tree is not the host's: its files are never bound
	// over, and its top-level links could lead anywhere.
	// A bind of the file itself (a read path naming the host's bundle, as
	// pip's cert setting does) covers it as a bind of its folder does.
	dsts := mountDsts(mounts)
	if dir := filepath.Dir(ec.CAFile); isTree || under(dir, dsts) || slices.Contains(dsts, ec.CAFile) {
		switch {
		case isTree:
			// The image's own bundle stays; SSL_CERT_FILE names the jail's.
		case coveredFile(ec.CAFile, mounts):
			over = ec.CAFile
		default:
			notes = append(notes, fmt.Sprintf("the jail's binds cover %s and hold no file %s: the CA bundle is only at %s (SSL_CERT_FILE)", dir, ec.CAFile, caFileFallback))
		}
		ec.CAFile = caFileFallback
	}
	return over, notes
}

// TrustNotes says what the CA bundle of a jail with a network grant
// lacks, or where it could not be shown (none: it is complete, at its
// usual path).
func (j *Jail) TrustNotes() []string { return slices.Clone(j.notes) }

// CAFile is where a jail with a network grant sees its CA bundle (the
// proxy's Config.CAFile, or caFileFallback when binds cover its folder);
// "" without a grant.
func (j *Jail) CAFile() string {
	if j.egress == nil {
		return ""
	}
	return j.egress.CAFile
}

// checkTmpfs checks Spec.Tmpfs against the read-only paths ro.
func checkTmpfs(mounts []TmpfsMount, ro []string) error {
	for i, m := range mounts {
		p := m.Path
		if !filepath.IsAbs(p) || filepath.Clean(p) != p || p == "/" || under(p, OwnDirs()) {
			return errdefs.New(errdefs.Invalid, "jail: tmpfs %q must be absolute, clean, not / and outside the jail's own folders", p)
		}
		if m.Bytes <= 0 {
			return errdefs.New(errdefs.Invalid, "jail: tmpfs %q has no size", p)
		}
		for _, r := range ro {
			if under(p, []string{r}) || under(r, []string{p}) {
				return errdefs.New(errdefs.Invalid, "jail: tmpfs %q overlaps the read-only path %q", p, r)
			}
		}
		for _, o := range mounts[:i] {
			if under(p, []string{o.Path}) || under(o.Path, []string{p}) {
				return errdefs.New(errdefs.Invalid, "jail: tmpfs %q overlaps tmpfs %q", p, o.Path)
			}
		}
	}
	return nil
}

// mountDsts are the paths the root's binds and symlinks occupy.
func mountDsts(ops []mountOp) []string {
	var out []string
	for _, op := range ops {
		out = append(out, op.Dst)
	}
	return out
}

// coveredFile reports whether p, in a folder a bind covers or bound
// itself, is a regular file of that bind reached without symlinks (so the
// jail shows it at p, and a file bound over it shows there).
func coveredFile(p string, ops []mountOp) bool {
	for _, op := range ops {
		if op.Kind == "bind" && (op.File && op.Dst == p || !op.File && under(p, []string{op.Dst})) {
			real, err := filepath.EvalSymlinks(p)
			fi, serr := os.Lstat(p)
			return err == nil && real == p && serr == nil && fi.Mode().IsRegular()
		}
	}
	return false
}

// LaunchOptions adjust one start of a jail.
type LaunchOptions struct {
	// Cgroup, when not nil, is the group the jail is born in (from a
	// thread attached to it, or with CLONE_INTO_CGROUP), so its limits
	// hold from the first instruction.
	Cgroup *cgroup.Group
	// Audit receives the egress proxy's decisions until Running.BeginCall
	// points it elsewhere; nil means egress.AuditFrom(ctx).
	Audit func(egress.Event)
}

// Launch returns a launch function for worker.StartWith
// (StartOptions.Launch) that starts cmd in a fresh jail instead of on the
// host, and the jail's host side. The jail runs the root's program with
// cmd.Args[1:] as pid 1 of its pid namespace, in ScratchDir, with the
// root's environment (cmd.Path, cmd.Env and cmd.Dir are replaced). The
// program keeps every descriptor of cmd.ExtraFiles at its usual number;
// the init stage's config socket goes after them, named by its argv[1].
// launch returns once the program was exec'd in the jail (and the egress
// proxy, with a grant, serves the jail's listener), or the reason it could
// not be; it kills and reaps what it started when it fails. Close r once
// the program has exited or been killed, whether or not StartWith
// succeeded.
func (j *Jail) Launch(ctx context.Context, opts LaunchOptions) (launch func(*exec.Cmd) error, r *Running) {
	r = &Running{}
	audit := opts.Audit
	if audit == nil {
		audit = egress.AuditFrom(ctx)
	}
	launch = func(cmd *exec.Cmd) error {
		var proxy *egress.Proxy
		if j.egress != nil {
			ec := *j.egress
			ec.Audit = audit
			p, err := egress.New(ec)
			if err != nil {
				return err
			}
			proxy = p
			defer func() {
				if proxy != nil { // not handed to r
					proxy.Close()
				}
			}()
		}
		cfg := j.startConfig(cmd.Args[1:], proxy)
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		parent, child := os.NewFile(uintptr(fds[0]), "jail-config"), os.NewFile(uintptr(fds[1]), "jail-config")
		defer parent.Close()
		defer child.Close()
		cmd.ExtraFiles = append(cmd.ExtraFiles, child)
		cmd.Path = "/proc/self/exe"
		cmd.Args = []string{stage.Arg0, strconv.Itoa(2 + len(cmd.ExtraFiles))}
		cmd.Env = []string{}
		cmd.Dir = ""
		if cmd.SysProcAttr == nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{}
		}
		cmd.SysProcAttr.Cloneflags |= cloneFlags
		// The jail must not outlive the host process.
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
		if cfg.UserNS {
			cmd.SysProcAttr.Cloneflags |= syscall.CLONE_NEWUSER
			cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
			cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
			cmd.SysProcAttr.GidMappingsEnableSetgroups = false
		}
		if err := opts.Cgroup.Start(cmd); err != nil {
			return err
		}
		child.Close()
		kill := func(err error) error {
			cmd.Process.Kill()
			cmd.Wait()
			return err
		}
		lf, err := sendConfig(parent, &cfg)
		if err != nil {
			return kill(err)
		}
		if proxy != nil {
			l, err := net.FileListener(lf)
			lf.Close()
			if err != nil {
				return kill(fmt.Errorf("egress listener: %w", err))
			}
			r.Serve(proxy, l, audit)
			proxy = nil
		}
		return nil
	}
	return launch, r
}

// startConfig is the init stage's config for one start: the root's program
// with args, and with a network grant (proxy not nil) the listener to make
// for it and the CA to trust. The secrets' values stay in the proxy.
func (j *Jail) startConfig(args []string, proxy *egress.Proxy) config {
	cfg := j.base
	cfg.Argv = append([]string{j.root.Program()}, args...)
	env := maps.Clone(j.env)
	if env == nil {
		env = map[string]string{}
	}
	if proxy != nil {
		// The bundle planned once, plus this start's interception CA.
		cfg.Egress = &egressJail{Port: proxyPort(), CAFile: j.egress.CAFile, CAOver: j.caOver,
			CA: egress.JoinPEM(j.trust, proxy.CACertPEM())}
		// Every request goes through the proxy.
		delete(env, "NO_PROXY")
		delete(env, "no_proxy")
		maps.Copy(env, proxy.Env(ProxyAddr))
	}
	cfg.Env = j.root.Env(env)
	return cfg
}

// proxyPort is the port of ProxyAddr.
func proxyPort() int { return int(netip.MustParseAddrPort(ProxyAddr).Port()) }

// Running is the host side of one started jail: its egress proxy, if any.
type Running struct {
	mu     sync.Mutex
	proxy  *egress.Proxy
	served chan struct{}
	idle   func(egress.Event) // the proxy's sink outside calls
}

// Serve serves p on l until Close, with idle as p's audit sink outside
// calls (BeginCall, EndCall). Launch calls it for a jail's listener; a
// runtime that makes the listener itself (the gvisor backend) calls it on
// a Running of its own, whose zero value is ready.
func (r *Running) Serve(p *egress.Proxy, l net.Listener, idle func(egress.Event)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.proxy, r.idle, r.served = p, idle, make(chan struct{})
	served := r.served
	go func() {
		defer close(served)
		p.Serve(l)
	}()
}

// BeginCall points the jail's egress proxy at the audit sink of ctx (the
// call's) and gives it a fresh budget (MaxConns, MaxBytes, MaxEvents), so
// limits and audit events are per call. The jail serves one call at a time.
func (r *Running) BeginCall(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proxy != nil {
		r.proxy.SetAudit(egress.AuditFrom(ctx))
		r.proxy.ResetBudget()
	}
}

// EndCall points the proxy back at LaunchOptions.Audit, for connections
// the program opens outside calls (a thread that an import started, say).
func (r *Running) EndCall() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proxy != nil {
		r.proxy.SetAudit(r.idle)
	}
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

// sendConfig hands the init stage its config and waits until it exec'd the
// program: EOF without a message. Anything else is the reason it could not.
// With cfg.Egress, the init stage first sends one zero byte carrying the
// proxy's listening socket (SCM_RIGHTS), which sendConfig returns.
func sendConfig(sock *os.File, cfg *config) (*os.File, error) {
	if err := worker.WriteFrame(sock, cfg); err != nil {
		return nil, fmt.Errorf("send jail config: %w", err)
	}
	sock.SetReadDeadline(time.Now().Add(30 * time.Second))
	var lf *os.File
	var why []byte
	if cfg.Egress != nil {
		var err error
		if lf, why, err = recvListener(sock); err != nil {
			return nil, fmt.Errorf("jail setup: %w", err)
		}
	}
	rest, err := io.ReadAll(io.LimitReader(sock, 4096))
	why = append(why, rest...)
	if err == nil && len(why) == 0 && cfg.Egress != nil && lf == nil {
		err = errors.New("no egress listener from the init stage")
	}
	if err != nil || len(why) > 0 {
		if lf != nil {
			lf.Close()
		}
		if err != nil {
			return nil, fmt.Errorf("jail setup: %w", err)
		}
		return nil, fmt.Errorf("jail setup: %s", why)
	}
	return lf, nil
}

// recvListener reads the init stage's first message: a zero byte with the
// proxy's listening socket, or (when setup failed first) the start of an
// error message, returned as why.
func recvListener(sock *os.File) (lf *os.File, why []byte, err error) {
	rc, err := sock.SyscallConn()
	if err != nil {
		return nil, nil, err
	}
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	var n, oobn int
	var rerr error
	if err := rc.Read(func(fd uintptr) bool {
		n, oobn, _, _, rerr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_CMSG_CLOEXEC)
		return rerr != unix.EAGAIN
	}); err != nil {
		return nil, nil, err
	}
	if rerr != nil {
		return nil, nil, rerr
	}
	var fds []int
	if oobn > 0 {
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return nil, nil, err
		}
		for _, m := range msgs {
			if r, err := unix.ParseUnixRights(&m); err == nil {
				fds = append(fds, r...)
			}
		}
	}
	if n >= 1 && buf[0] == 0 && len(fds) == 1 {
		return os.NewFile(uintptr(fds[0]), "egress-listener"), buf[1:n], nil
	}
	for _, fd := range fds {
		unix.Close(fd)
	}
	return nil, buf[:n], nil
}
