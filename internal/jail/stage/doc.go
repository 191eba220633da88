// Package stage is a jail's init stage: the code that runs in the host
// binary re-executed as Arg0 ("skillbox-jail-init") inside the jail's new
// namespaces, reads its Config as one frame from the config socket, builds
// the root (mounts, /proc, /dev, /scratch, the CA bundle), applies
// Landlock, drops privileges, installs the seccomp filter and execs the
// jail's program. internal/jail is its only user: it writes the Config and
// starts the binary; see that package for what a jail is.
//
// It runs from a package init, before the binary's heavier packages are
// initialized, so it imports only the standard library, x/sys, x/net/bpf,
// go-landlock, internal/seccomp and internal/frame. Everything here but
// Config and the paths is Linux only.
package stage
