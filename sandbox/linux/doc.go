// Package linux is the "linux" sandbox backend: every call runs in a jail
// built from Linux namespaces, a minimal read-only root, Landlock, a
// seccomp filter, an unprivileged uid and cgroup limits, and — by default —
// in a fresh fork of a pre-imported "zygote" interpreter, so a single-use
// call costs milliseconds.
//
// # The jail
//
// The jail is internal/jail's, with the host Python interpreter as its
// root (jail.HostPython: the interpreter's real binary, ld.so, its shared
// libraries, its prefix when not a shared one such as /usr, its sys.path,
// /etc/ld.so.cache), the operator's read paths at the same paths, and the
// bundle read-only and noexec at /skill. Its pid 1 is Python (-I -S)
// running the harness (internal/worker) with a fixed environment plus
// exactly the granted variables, as uid 2147352576 (which owns nothing on
// the host), behind Landlock and seccomp, in an empty network namespace
// whose only route out, with a network grant, is an egress proxy in this
// process. Each jail is born in its own cgroup, whose limits (memory,
// pids, CPU) are written only then: skillbox is never charged to it.
//
// Python is pid 1 of the jail's pid namespace, so killing it kills the
// whole jail; the harness's zygote relies on that to clean up after calls.
//
// # Modes
//
// Single-use (default): a pool of zygotes per Sandbox, each a jail whose
// harness holds only trusted code (the standard library modules the
// skill's source names, read but never run; docs/PROTOCOL.md); each call
// gets a fresh fork (pre-forked while idle) that imports the skill, after
// which the zygote kills every leftover process and empties /scratch.
// Limits on memory, pids and CPU apply to the whole jail cgroup (zygote
// plus the call's child), not to the child alone. Options.Exec = ExecCold
// starts a new jail per call instead, and so does a one-shot Spec
// (Spec.OneShot: the CLI's run), unless the skill is warm, whose zygote
// then pre-forks nothing. ModeSession keeps one worker for the Sandbox's
// lifetime.
//
// # Capabilities
//
// Probe reports each layer (the namespaces, seccomp, Landlock, the memory,
// pids and CPU cgroup controllers, the interpreter) and what they enforce
// together. Open refuses a Spec when a layer is missing, unless the Spec
// is best-effort: then the jail runs without the kernel-hardening and
// cgroup layers it lacks (never without a namespace), and every result
// says so.
//
// # Requirements
//
// Root, or unprivileged user namespaces plus writable cgroups; Linux 5.8
// for /proc's process subset and overlayfs for the bundle (a best-effort
// run goes without either, with a warning). The bundle must be readable by
// the jail's uid (other-readable files), because the jail does not run as
// the bundle's owner.
package linux
