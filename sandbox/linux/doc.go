// Package linux is the "linux" sandbox backend: every call runs in a jail
// built from Linux namespaces, a minimal read-only root, Landlock, a
// seccomp filter, an unprivileged uid and cgroup limits, and — by default —
// in a fresh fork of a pre-imported "zygote" interpreter, so a single-use
// call costs milliseconds.
//
// # The jail
//
// The host binary re-executes itself (/proc/self/exe) with argv[0]
// "skillbox-jail-init" in new pid, mount, network, ipc, uts and cgroup
// namespaces (plus a user namespace when not root), born inside the jail's
// cgroup, whose limits are written only then (the launching thread has left
// the group: skillbox is never charged to it). The package's init function
// recognises the marker, reads its config from fd 5 (sent once the limits
// are in place) and:
//
//   - makes mounts private, pivots into a tmpfs root holding read-only binds
//     of exactly the interpreter's needs (pyinterp's HostPaths: its own
//     prefix when not a shared one such as /usr, its real binary, ld.so,
//     the directories of its shared libraries, its sys.path directories,
//     /etc/ld.so.cache), the operator's read paths at the same paths, the
//     bundle read-only and noexec at /skill (through an overlay whose only
//     real layer it is, so no mount table shows its host path), a
//     size-capped private noexec tmpfs at /scratch (cwd, HOME, TMPDIR), a
//     /proc of the new pid namespace with subset=pid and hidepid=invisible
//     (processes only: no cmdline, kallsyms, meminfo, sys, ...), and /dev
//     with only null, zero, random, urandom, bound read-only (usable, but
//     their mode and owner cannot change); no host /sys, /dev/shm, /run,
//     /tmp or /etc; the root is then read-only;
//   - brings up loopback (the network namespace has nothing else) and, with
//     a network grant, listens on 127.0.0.1:3128 and hands that socket to
//     the host's egress proxy; sets the hostname and rlimits (core 0,
//     fsize, nofile);
//   - restricts itself with Landlock via go-landlock, every right the
//     kernel's ABI knows, never best-effort (read-only runtime, read
//     paths, bundle and /proc;
//     read-write scratch and the four devices; TCP bind denied, connect
//     denied except to the egress proxy's port with a network grant;
//     abstract unix sockets and signals scoped on ABI >= 6);
//   - drops the bounding, ambient and inheritable capabilities, switches to
//     uid/gid JailID (2147352576, which owns nothing on the host), sets
//     no_new_privs and installs the seccomp filter;
//   - marks every descriptor but 0-4 close-on-exec and execs Python with a
//     fixed environment plus exactly the granted variables.
//
// Python is pid 1 of the jail's pid namespace, so killing it kills the
// whole jail; the harness's zygote relies on that to clean up after calls.
//
// # Modes
//
// Single-use (default): a pool of zygotes per Sandbox, each a jail whose
// harness holds only trusted code (the standard library modules the skill's
// source names, read but never run; docs/PROTOCOL.md); each call gets a
// fresh fork (pre-forked while idle) that imports the skill, after which
// the zygote kills every leftover process and empties /scratch. Limits on memory, pids and CPU apply to the whole jail
// cgroup (zygote plus the call's child), not to the child alone.
// Options.Exec = ExecCold starts a new jail per call instead, and so does a
// one-shot Spec (Spec.OneShot: the CLI's run), unless the skill is warm,
// whose zygote then pre-forks nothing. ModeSession keeps one worker for the
// Sandbox's lifetime.
//
// # Requirements
//
// Root, or unprivileged user namespaces plus writable cgroups; Linux 5.8
// for /proc's process subset and overlayfs for the bundle (a best-effort
// run goes without either, with a warning). The bundle must be readable by
// JailID (other-readable files), because the jail does not run as the
// bundle's owner.
package linux
