// Package jail builds and starts Linux jails: the one jail skillbox runs
// programs in (the linux backend's Python harness, pyodide's Deno workers,
// the environment builds' pip: internal/skillenv/jailbuild), whatever root
// those programs need. The gvisor backend's sandboxes are runsc's, not
// these jails; it takes only the root providers' files (RootMounts).
//
// # A jail
//
// Launch re-executes the host binary (/proc/self/exe) with argv[0]
// "skillbox-jail-init" in new pid, mount, network, ipc, uts and cgroup
// namespaces (plus a user namespace when the host process is not root),
// born inside the cgroup it is given (LaunchOptions.Cgroup). The init
// function of the subpackage stage (linked by this package) recognises the
// marker in any binary that links it, before the binary's heavier packages
// are initialized (see stage's init), reads one config frame from the
// config socket (whose descriptor is argv[1], after the program's own
// descriptors), and:
//
//   - makes mounts private and pivots into a tmpfs root holding read-only
//     binds of what the root provider names (Root.Binds) and of the
//     Spec's ReadPaths, each at its host path (symlinks on the way
//     recreated); the bundle, if any, read-only and noexec at SkillDir
//     through an overlay whose only real layer it is (no mount table shows
//     its host path); a size-capped private noexec tmpfs at ScratchDir; a
//     /proc of the new pid namespace with subset=pid and hidepid=invisible;
//     a /dev of null, zero, random and urandom bound read-only; read-only
//     copies of the host's two transparent huge page settings at
//     stage.THPDir, which glibc's malloc reads (worker.MallocTunables), and
//     nothing else of /sys; then makes the root read-only;
//   - brings up loopback and, with a network grant, listens on ProxyAddr
//     and hands the listening socket back over the config socket: an
//     egress proxy (internal/egress) in the host process serves it, so the
//     jail's only route out is the proxy; one CA bundle (the host's, the
//     operator's CACerts, the proxy's CA when it intercepts TLS) is
//     written read-only at /etc/ssl/certs/ca-certificates.crt (or at a
//     fallback bound over it when a bind covers that folder or binds that
//     file itself, as a read path naming the host's bundle does);
//   - sets the hostname and rlimits, restricts itself with Landlock (every
//     right the kernel's ABI knows; TCP connect only to the proxy's port),
//     drops every capability, switches to ID (which owns nothing on the
//     host; in a user namespace it keeps the one uid mapped, the host
//     user's own, seen inside as 0), sets no_new_privs and installs the
//     seccomp filter (internal/seccomp);
//   - execs the root's program (Root.Program) as the jail's pid 1, in
//     ScratchDir, with the environment the root makes of the granted
//     variables (Root.Env).
//
// The host waits until the program was exec'd or the init stage reported
// why it could not be. Weakening is explicit: a Spec applies every layer
// unless a field says otherwise (NoLandlock, NoSeccomp, ProcFull,
// BundleBind), set by a backend on the operator's best-effort opt-in
// (Fallbacks) or, for a jail that is defence in depth, by BestEffort.
//
// # Root providers
//
// A Root provider says what a jail's root holds and what runs in it: the
// host paths to bind read-only, the program to exec and its environment.
// Three exist:
//
//   - HostPython: the host's Python interpreter (internal/pyinterp: its
//     binary, loader, libraries, prefix and sys.path), running the
//     worker's environment. The linux backend's zygote, session and cold
//     jails use it.
//   - Binary: one host binary with its ELF dependencies, further
//     read-only folders and a fixed environment. The pyodide backend's
//     Deno workers use it (Deno, the Pyodide folder, the worker folder,
//     Deno's cache).
//   - Image: an OCI image's unpacked root file system (internal/image).
//     It is a Tree: instead of host paths at the same paths, every
//     top-level entry of its folder appears read-only at /NAME of the
//     jail's tmpfs root (folders and files bound, symbolic links
//     recreated), the jail's own folders on top as always, so nothing of
//     the host's / is visible. Its program is the image's python
//     (NewImage finds it inside the folder, links resolved as the jail
//     will see them); its environment is the image's Env without LD_*,
//     PYTHON* and proxy variables, under the worker's (ImageEnv, Env).
//     The linux backend runs execution: container skills with it.
//
// Backends choose a provider and otherwise share everything above, so a
// new provider changes no backend. A per-skill Python environment needs no
// provider of its own: it is HostPython with the environment's interpreter
// (pyinterp's InEnvironment), whose paths add the environment's folder,
// bound read-only, and whose program is its base's binary (never a file
// of the environment; the harness takes the environment at site).
//
// Everything here but the provider types, EgressConfig and the paths is
// Linux only.
package jail
