package stage

import (
	"fmt"
	"os"
	"path"
	"strconv"

	"github.com/skillbox-dev/skillbox/internal/seccomp"
	"golang.org/x/sys/unix"
)

// setup runs in the init stage, as root of the new namespaces, and leaves
// the thread ready to exec the jailed program: new root, loopback, limits,
// Landlock, unprivileged ids, no capabilities, no_new_privs, seccomp. sock
// is the config socket's descriptor.
func setup(cfg *Config, sock int) error {
	if err := buildRoot(cfg); err != nil {
		return err
	}
	if err := LoopbackUp(); err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	if cfg.Egress != nil {
		if err := passProxyListener(sock, cfg.Egress.Port); err != nil {
			return fmt.Errorf("egress listener: %w", err)
		}
	}
	if err := unix.Sethostname([]byte("skillbox")); err != nil {
		return fmt.Errorf("hostname: %w", err)
	}
	if err := setRlimits(cfg); err != nil {
		return err
	}
	if err := unix.Chdir(ScratchDir); err != nil {
		return err
	}
	if cfg.Landlock {
		if err := applyLandlock(cfg); err != nil {
			return fmt.Errorf("landlock: %w", err)
		}
	}
	if cfg.OwnFDs && !cfg.UserNS {
		for fd := 3; fd < sock; fd++ {
			if err := unix.Fchown(fd, cfg.UID, cfg.GID); err != nil && err != unix.EBADF {
				return fmt.Errorf("hand descriptor %d to the program: %w", fd, err)
			}
		}
	}
	if err := dropPrivileges(cfg); err != nil {
		return err
	}
	if err := tieToHost(sock); err != nil {
		return err
	}
	if cfg.Seccomp {
		if err := seccomp.Install(); err != nil {
			return err
		}
	} else if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	return nil
}

// buildRoot makes a tmpfs the root, with the runtime bound and the bundle
// shown read-only, a noexec scratch tmpfs, a /proc of processes only and a
// minimal /dev.
//
// It pivots twice (as bubblewrap does): first into a small staging tmpfs,
// where the host root stays reachable at /oldroot whatever paths the
// sources have, then into the finished jail root, detaching the rest.
func buildRoot(cfg *Config) error {
	// Nothing we mount may propagate back to the host.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	const stage = "/tmp"
	if err := unix.Mount("tmpfs", stage, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=64k,mode=0700"); err != nil {
		return fmt.Errorf("staging tmpfs: %w", err)
	}
	for _, d := range []string{"oldroot", "newroot"} {
		if err := os.Mkdir(path.Join(stage, d), 0o700); err != nil {
			return err
		}
	}
	if err := unix.PivotRoot(stage, stage+"/oldroot"); err != nil {
		return fmt.Errorf("pivot_root (staging): %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return err
	}
	const root = "/newroot"
	size := 1 << 20
	if cfg.Egress != nil {
		size += len(cfg.Egress.CA)
	}
	if err := unix.Mount("tmpfs", root, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, fmt.Sprintf("size=%d,mode=0755", size)); err != nil {
		return fmt.Errorf("root tmpfs: %w", err)
	}
	for _, op := range cfg.Mounts {
		if err := applyOp(root, op); err != nil {
			return err
		}
	}
	for _, t := range cfg.Tmpfs {
		if err := mountTmpfs(cfg, path.Join(root, t.Path), t.Bytes); err != nil {
			return fmt.Errorf("tmpfs %s: %w", t.Path, err)
		}
	}
	if cfg.Bundle != "" {
		if err := mountBundle(cfg, path.Join(root, SkillDir)); err != nil {
			return err
		}
	}
	if err := mountScratch(cfg, path.Join(root, ScratchDir)); err != nil {
		return err
	}
	if err := buildDev(root); err != nil {
		return err
	}
	if err := copyTHP(root); err != nil {
		return err
	}
	if cfg.Egress != nil && cfg.Egress.CAFile != "" {
		// On the root tmpfs, read-only once the root is remounted.
		dst := path.Join(root, cfg.Egress.CAFile)
		if err := os.MkdirAll(path.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("egress CA: %w", err)
		}
		if err := os.WriteFile(dst, cfg.Egress.CA, 0o444); err != nil {
			return fmt.Errorf("egress CA: %w", err)
		}
		if cfg.Egress.CAOver != "" {
			// The usual path is a file of a bind: show the bundle there.
			if err := bindRO(dst, path.Join(root, cfg.Egress.CAOver), true, 0); err != nil {
				return fmt.Errorf("egress CA at %s: %w", cfg.Egress.CAOver, err)
			}
		}
	}
	if err := mountProc(root, cfg.ProcFull); err != nil {
		return err
	}
	// Into the finished root; the staging tmpfs with the host root below
	// it is stacked on "/" after pivot_root(".", ".") and detached.
	if err := unix.Chdir(root); err != nil {
		return err
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return err
	}
	if err := unix.Mount("", "/", "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("remount root read-only: %w", err)
	}
	return nil
}

// mountBundle shows the bundle read-only and noexec at dst.
//
// A bind mount would show the bundle's host folder (the host's cache
// folder, say /root/.cache/skillbox/bundles/<digest>) in the jail's
// /proc/self/mountinfo: a bind's root field is its source's path within
// the source's file system, whatever path it is bound from, and no file of
// /proc/<pid> can be hidden for every pid (Landlock grants per inode, and
// pids come and go). So the bundle is the only real layer of a read-only
// overlay, whose root is its own: mountinfo shows "/" and the layers as
// they were named at mount time, here "." (the bundle, the init stage's
// cwd while mounting) and an empty folder of the staging tmpfs. Nothing is
// copied, so bundles of any size cost the same. Overlay options stop it
// from following redirects and metacopy attributes stored in the bundle.
func mountBundle(cfg *Config, dst string) error {
	src := path.Join("/oldroot", cfg.Bundle)
	if cfg.BundleBind {
		// Best effort without overlayfs: the host path shows.
		if err := bindRO(src, dst, false, unix.MS_NOEXEC); err != nil {
			return fmt.Errorf("bind bundle: %w", err)
		}
		return nil
	}
	const empty = "/empty" // in the staging tmpfs, detached with it
	if err := os.Mkdir(empty, 0o700); err != nil {
		return err
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	if err := unix.Chdir(src); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	defer unix.Chdir("/")
	flags := uintptr(unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	if err := unix.Mount("overlay", dst, "overlay", flags, "lowerdir=.:"+empty+",redirect_dir=nofollow,metacopy=off"); err != nil {
		return fmt.Errorf("show the bundle at %s through a read-only overlay (keeps its host path out of /proc/self/mountinfo; --best-effort binds it without, on kernels lacking overlayfs): %w", SkillDir, err)
	}
	return nil
}

// mountScratch mounts the scratch tmpfs, owned by the jail's ids. It is
// noexec: a file the skill writes or downloads there must not run as a
// program or be mapped executable (which also stops ld.so from loading
// it), so code that is on no read-only mount never execs.
func mountScratch(cfg *Config, dst string) error {
	if err := os.Mkdir(dst, 0o755); err != nil {
		return err
	}
	opts := fmt.Sprintf("size=%d,mode=0700,uid=%d,gid=%d", cfg.ScratchBytes, cfg.UID, cfg.GID)
	if cfg.UserNS {
		opts = fmt.Sprintf("size=%d,mode=0700", cfg.ScratchBytes)
	}
	if err := unix.Mount("tmpfs", dst, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, opts); err != nil {
		return fmt.Errorf("scratch tmpfs: %w", err)
	}
	return nil
}

// mountTmpfs mounts an empty tmpfs of at most size bytes at dst, owned by
// the jail's ids, noexec like the scratch tmpfs.
func mountTmpfs(cfg *Config, dst string, size int64) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	opts := fmt.Sprintf("size=%d,mode=0755,uid=%d,gid=%d", size, cfg.UID, cfg.GID)
	if cfg.UserNS {
		opts = fmt.Sprintf("size=%d,mode=0755", size)
	}
	return unix.Mount("tmpfs", dst, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, opts)
}

func applyOp(root string, op MountOp) error {
	dst := path.Join(root, op.Dst)
	switch op.Kind {
	case "symlink":
		if err := os.MkdirAll(path.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.Symlink(op.Target, dst); err != nil && !os.IsExist(err) {
			return fmt.Errorf("symlink %s: %w", op.Dst, err)
		}
		return nil
	case "bind":
		if err := bindRO(path.Join("/oldroot", op.Src), dst, op.File, 0); err != nil {
			return fmt.Errorf("bind %s: %w", op.Src, err)
		}
		return nil
	}
	return fmt.Errorf("unknown mount op %q", op.Kind)
}

// bindRO bind-mounts src at dst (creating the mount point) read-only,
// nosuid, nodev, plus extra flags.
func bindRO(src, dst string, file bool, extra uintptr) error {
	if err := mountPoint(dst, file); err != nil {
		return err
	}
	if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	// Bind flags only take effect on a remount.
	flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | extra)
	return unix.Mount("", dst, "", flags, "")
}

func mountPoint(dst string, file bool) error {
	if !file {
		return os.MkdirAll(dst, 0o755)
	}
	if err := os.MkdirAll(path.Dir(dst), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_RDONLY, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

// buildDev binds the four harmless host devices into a /dev on the root
// tmpfs; no tty, no shm, no pts. The binds are read-only: a device node is
// still read and written (the mount's read-only flag does not apply to
// device I/O), but its mode, owner and times cannot change, whoever owns
// it on the host.
func buildDev(root string) error {
	dev := path.Join(root, "dev")
	if err := os.Mkdir(dev, 0o755); err != nil {
		return err
	}
	for _, n := range []string{"null", "zero", "random", "urandom"} {
		dst := path.Join(dev, n)
		if err := mountPoint(dst, true); err != nil {
			return err
		}
		if err := unix.Mount("/oldroot/dev/"+n, dst, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind /dev/%s: %w", n, err)
		}
		if err := unix.Mount("", dst, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NOEXEC, ""); err != nil {
			return fmt.Errorf("remount /dev/%s: %w", n, err)
		}
	}
	for name, target := range map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0",
		"stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"} {
		if err := os.Symlink(target, path.Join(dev, name)); err != nil {
			return err
		}
	}
	return nil
}

// THPDir holds, in the jail, read-only copies of the host's two
// transparent huge page settings glibc's malloc reads when
// GLIBC_TUNABLES asks it for huge pages (worker.MallocTunables): without
// them it cannot tell whether the kernel would honour
// madvise(MADV_HUGEPAGE) and never asks. They tell nothing a jailed
// process cannot already see: /proc/self/smaps shows whether each of its
// mappings may get huge pages.
const THPDir = "/sys/kernel/mm/transparent_hugepage"

// copyTHP writes THPDir's two files onto the root tmpfs, read-only, when
// the host has both; nothing else of /sys is shown. Only where the root
// has no /sys of its own: under a bind (an operator's read path in /sys)
// or a symbolic link nothing is written, and malloc does not ask for huge
// pages there.
func copyTHP(root string) error {
	if _, err := os.Lstat(path.Join(root, "sys")); err == nil {
		return nil
	}
	names := []string{"enabled", "hpage_pmd_size"}
	files := make([][]byte, len(names))
	for i, n := range names {
		b, err := os.ReadFile(path.Join("/oldroot", THPDir, n))
		if err != nil || len(b) > 256 {
			return nil // no transparent huge pages to ask for
		}
		files[i] = b
	}
	dir := path.Join(root, THPDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("%s: %w", THPDir, err)
	}
	for i, n := range names {
		if err := os.WriteFile(path.Join(dir, n), files[i], 0o444); err != nil {
			return fmt.Errorf("%s: %w", THPDir, err)
		}
	}
	return nil
}

// ProcOptions make /proc show processes only: subset=pid drops every
// file that is not a process's (cmdline, config.gz, kallsyms, meminfo,
// sys, sysrq-trigger, ...: host facts and kernel knobs), hidepid=invisible
// hides processes the reader may not ptrace. Both need Linux 5.8.
const ProcOptions = "subset=pid,hidepid=invisible"

// mountProc mounts a procfs of the new pid namespace (so only the jail's
// processes are visible) with ProcOptions. With full (best effort on older
// kernels) it mounts all of it and makes the kernel-tuning parts
// read-only; the masks find nothing to mask under ProcOptions.
func mountProc(root string, full bool) error {
	proc := path.Join(root, "proc")
	if err := os.Mkdir(proc, 0o555); err != nil {
		return err
	}
	opts := ProcOptions
	if full {
		opts = ""
	}
	if err := unix.Mount("proc", proc, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, opts); err != nil {
		if !full {
			return fmt.Errorf("mount /proc with %s (Linux 5.8 or later; --best-effort mounts it without): %w", ProcOptions, err)
		}
		return fmt.Errorf("mount /proc: %w", err)
	}
	for _, p := range []string{"sys", "sysrq-trigger", "irq", "bus", "fs"} {
		full := path.Join(proc, p)
		fi, err := os.Lstat(full)
		if err != nil {
			continue
		}
		if err := bindRO(full, full, !fi.IsDir(), unix.MS_NOEXEC); err != nil {
			return fmt.Errorf("mask /proc/%s: %w", p, err)
		}
	}
	return nil
}

func setRlimits(cfg *Config) error {
	lim := map[int]uint64{
		unix.RLIMIT_CORE:   0,
		unix.RLIMIT_NOFILE: 1024,
		// No single file can outgrow the scratch anyway; this also stops
		// a write that would fill it in one go.
		unix.RLIMIT_FSIZE: uint64(cfg.ScratchBytes),
	}
	if cfg.Nproc > 0 {
		lim[unix.RLIMIT_NPROC] = uint64(cfg.Nproc)
	}
	for r, v := range lim {
		var cur unix.Rlimit
		if err := unix.Getrlimit(r, &cur); err != nil {
			return err
		}
		// Without CAP_SYS_RESOURCE a limit can only go down.
		v = min(v, cur.Max)
		if err := unix.Setrlimit(r, &unix.Rlimit{Cur: v, Max: v}); err != nil {
			return fmt.Errorf("rlimit %d: %w", r, err)
		}
	}
	return nil
}

// dropPrivileges clears the bounding and ambient capability sets while
// still privileged, switches to the unprivileged ids on this thread, and
// clears what remains (inheritable).
func dropPrivileges(cfg *Config) error {
	last := 63
	if b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap"); err == nil {
		if n, err := strconv.Atoi(string(trimNL(b))); err == nil {
			last = n
		}
	}
	for c := 0; c <= last; c++ {
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && err != unix.EINVAL {
			return fmt.Errorf("drop bounding capability %d: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	if !cfg.UserNS {
		// Raw syscalls: they act on this thread only, which is the one
		// that execs (Go's wrappers would change every thread, needlessly).
		if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, 0, 0, 0); e != 0 {
			return fmt.Errorf("setgroups: %w", e)
		}
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(cfg.GID), uintptr(cfg.GID), uintptr(cfg.GID)); e != 0 {
			return fmt.Errorf("setresgid: %w", e)
		}
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(cfg.UID), uintptr(cfg.UID), uintptr(cfg.UID)); e != 0 {
			return fmt.Errorf("setresuid: %w", e)
		}
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	return nil
}

// tieToHost makes the jail die with its host again. The host starts the
// init stage with a parent-death signal (SIGKILL), but the kernel clears
// it on every change of the effective ids (dropPrivileges), so it is set
// again here, after the last one: nothing after it changes credentials,
// and the program exec'd is never set-id (no_new_privs would ignore that
// anyway). A host that died before this point sent no signal; as pid 1 of
// a new pid namespace the stage cannot ask getppid(), so it asks the
// config socket instead: the host holds its end until the exec, and its
// death closes it.
func tieToHost(sock int) error {
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		return fmt.Errorf("parent-death signal: %w", err)
	}
	gone, err := hostGone(sock)
	if err != nil {
		return err
	}
	if gone {
		// Nobody is left to read an error: end quietly.
		os.Exit(125)
	}
	return nil
}

// hostGone says whether the host closed its end of the config socket sock
// (it died: it holds that end until the program was exec'd).
func hostGone(sock int) (bool, error) {
	fds := []unix.PollFd{{Fd: int32(sock), Events: unix.POLLRDHUP}}
	for {
		_, err := unix.Poll(fds, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("poll config socket: %w", err)
		}
		return fds[0].Revents&(unix.POLLRDHUP|unix.POLLHUP|unix.POLLERR) != 0, nil
	}
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}

// LoopbackUp brings "lo" up in the calling thread's new network namespace
// (it starts down), so the sandbox can use 127.0.0.1; nothing else exists
// there. The init stage calls it; so does the gvisor backend.
func LoopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// passProxyListener listens on 127.0.0.1:port in the jail's network
// namespace and sends the listening socket to the host over the config
// socket sock (one zero byte with SCM_RIGHTS); the host's egress proxy
// serves it. The jail keeps no copy. It runs before Landlock, which then
// denies every bind.
func passProxyListener(sock, port int) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return err
	}
	if err := unix.Listen(fd, 128); err != nil {
		return err
	}
	return unix.Sendmsg(sock, []byte{0}, unix.UnixRights(fd), nil, 0)
}
