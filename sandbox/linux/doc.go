// Package linux is the "linux" sandbox backend: every call runs in a jail
// built from Linux namespaces, a minimal read-only root, Landlock, a
// seccomp filter, an unprivileged uid and cgroup limits, and — by default —
// in an interpreter made ready before the call (a spare jail that imported
// the skill, or a fresh fork of a "zygote" interpreter holding trusted
// code), so a single-use call costs milliseconds.
//
// # The jail
//
// The jail is internal/jail's, with the host Python interpreter as its
// root (jail.HostPython: the interpreter's real binary, ld.so, its shared
// libraries, its prefix when not a shared one such as /usr, its sys.path,
// /etc/ld.so.cache), the operator's read paths at the same paths, and the
// bundle read-only and noexec at /skill. Its pid 1 is Python (-I -S)
// running the harness (internal/worker) with a fixed environment plus
// exactly the granted variables, as a uid of the sandbox's own from
// 2147352576 up (jail.NewID; it owns nothing on
// the host; when skillbox is not root, the jail's user namespace maps only
// the invoking user's uid, seen inside as 0, and the skill keeps it),
// behind Landlock and seccomp, in an empty network namespace
// whose only route out, with a network grant, is an egress proxy in this
// process. Each jail is born in its own cgroup, whose limits (memory,
// pids, CPU) are written only then: skillbox is never charged to it.
//
// A skill whose Spec has a Container (a manifest's execution: container)
// runs in its image instead: Open resolves the reference (a relative path
// is relative to the bundle), pins it (a Spec that pins a digest gets that
// image or errdefs.Denied), unpacks it into the image cache
// (Options.ImageCache) and marks it in use until Close; the jail's root is
// then jail.Image — the image's root file system, read-only, with the
// image's python running the harness, the image's Env without LD_*,
// PYTHON* and proxy variables. The image's Entrypoint, Cmd, WorkingDir
// and User are ignored: the harness runs in /scratch as the jail's uid.
// The image's interpreter and standard library are its author's code, so
// an image whose digest the operator does not list in
// trusted_environments gets no zygote: every single-use call runs in a
// fresh interpreter in a fresh jail, started ahead of the call (prestart,
// below); a listed one gets the pool.
//
// Python is pid 1 of the jail's pid namespace, so killing it kills the
// whole jail; the harness's zygote relies on that to clean up after calls.
//
// # Modes
//
// Single-use, Options.Exec = ExecZygote: a pool of zygotes per Sandbox, each a jail whose
// harness holds only trusted code (the standard library modules the
// skill's source names, read but never run; docs/PROTOCOL.md); each call
// gets a fresh fork (pre-forked while idle) that imports the skill, after
// which the zygote kills every leftover process and empties /scratch.
// Limits on memory, pids and CPU apply to the whole jail cgroup (zygote
// plus the call's child), not to the child alone. Options.Exec =
// ExecPrestart runs each call in a jail of its own instead, started before
// the call: spare jails whose single-mode harness imported the skill wait
// for calls (MinIdle of them, more while calls outrun them, up to
// PoolSize), so a call's interpreter is a fresh exec rather than a fork
// and touches only pages of its own, and a waiting skill costs one process
// rather than a zygote and its child; each call's replacement costs a
// whole jail's start rather than a fork. Options.Exec = ExecCold starts a
// new jail at each call, and so does a one-shot Spec (Spec.OneShot: the
// CLI's run), unless the skill is warm, whose zygote then pre-forks
// nothing. ModeSession keeps one worker for the Sandbox's lifetime.
//
// ExecAuto, the default, combines the two: a call takes a ready spare
// (prestart's path, MinIdle spares) and a call that finds none is forked
// from a zygote (the pool's, keeping none warm); while a zygote lives no
// spare is started, and once the zygotes idle out the spares come back.
// Calls now and then get prestart's latency and memory, a burst the
// zygote's CPU per call. A warm skill always gets the pool.
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
