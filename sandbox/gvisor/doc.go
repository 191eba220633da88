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
// finish within 10 s), with --network=none.
//
// runsc passes a container descriptors 0, 1 and 2 only, so the harness
// runs behind the worker's relay (worker.RelayArgv): the protocol on
// stdin and stdout, the skill's stdout and stderr multiplexed on stderr.
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
// Network grants (and so bound secrets): the egress proxy, which the
// linux jail reaches on its loopback, is not reachable from runsc's
// network stack here, so a skill granted hosts is refused with
// errdefs.Unavailable naming it (net-allowlist and secret-binding are not
// claimed). The skill's own Python environment (Spec.Environment) is not
// run: its requirements are checked against the interpreter, as on the
// process backend. Calls are not pre-forked: every single-use call pays
// for a sandbox.
package gvisor
