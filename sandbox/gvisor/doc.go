// Package gvisor is the "gvisor" sandbox backend: every call runs under
// gVisor's runsc, a user-space kernel that answers the skill's system
// calls itself, for skills whose risk warrants more than the linux
// backend's namespaces, seccomp and Landlock. It is chosen by name only
// (--backend gvisor): never by auto.
//
// # A sandbox
//
// Each single-use call starts its own gVisor sandbox (`runsc run` of an
// OCI bundle generated here), which ends with the call; a session keeps
// one sandbox for the Sandbox's calls. The bundle's root is read-only:
// for a skill with execution: container, the image's root file system
// (internal/imageroot: resolved, pinned and unpacked as for the linux
// backend); for any other skill, the host's Python interpreter
// (jail.HostPython: its binary, loader, libraries and sys.path) bound
// read-only at the same paths in an empty root. Either way the root is
// assembled in a private folder (jail.RootMounts), so that nothing is
// created in the image cache or on the host. The bundle is bound
// read-only and noexec at /skill, the operator's read paths read-only at
// their paths, a fresh tmpfs is the scratch (/scratch, the cwd). The
// harness runs as the jail's unprivileged uid with no capabilities and
// no_new_privs, with exactly the granted variables (worker.Environ), in
// new pid, mount, ipc, uts and network namespaces of the sentry, on the
// ptrace platform (policy file: platform: kvm, after a probe that must
// finish within 10 s), with --network=none unless the skill is granted
// the network.
//
// runsc passes a container descriptors 0, 1 and 2 only, so the harness
// runs behind the worker's relay (worker.RelayArgv): the protocol on
// stdin and stdout, the skill's stdout and stderr multiplexed on stderr.
//
// # Network grants
//
// A skill granted hosts (or bound secrets) reaches them only through
// skillbox's egress proxy (internal/egress), as under the linux jail
// (egress_linux.go). Each of its gVisor sandboxes is started by runsc from
// a thread that first entered a new network namespace, brought its
// loopback up and listened on jail.ProxyAddr there; runsc runs with
// --network=host, so the sentry's sockets are host sockets of that
// namespace, whose only listener is the proxy's, served by this process
// (a proxy per sandbox; a session's gives each call its audit sink and
// budget). The skill gets the proxy's variables and a read-only CA bundle
// (the host's roots, Spec.CACerts, the proxy's CA) where they point,
// placed by jail.PlaceTrust.
//
// # Limits
//
// Every sandbox (runsc, its sentry and gofer) is born in a cgroup of its
// own (internal/cgroup, runsc --ignore-cgroups), whose memory and pids
// limits are the call's plus an allowance for gVisor's own processes
// (MemoryAllowance, PidsAllowance); a timeout or a cancelled call kills
// the whole cgroup and `runsc delete --force`s the container. runsc's
// state lives in the sandbox's private folder, removed at Close.
//
// # Not (yet) supported
//
// The skill's own Python environment (Spec.Environment) is not
// run: its requirements are checked against the interpreter, as on the
// process backend. Calls are not pre-forked: every single-use call pays
// for a sandbox.
package gvisor
