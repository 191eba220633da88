// Package seccomp builds the syscall filter every skillbox jail runs under,
// as a classic BPF program assembled in Go (no libseccomp, no cgo), and
// installs it.
//
// The filter is a deny list on top of namespaces, Landlock and an
// unprivileged uid: it removes kernel attack surface an unprivileged process
// could still reach (ptrace, user namespaces, keyrings, bpf, io_uring,
// memfd exec, SysV IPC, seccomp listeners, ...).
// Denied calls fail with EPERM so skills see clean errors; clone3 fails with
// ENOSYS so libc falls back to clone, whose flags the filter can inspect; a
// foreign architecture (i386 via int 0x80) kills the process.
//
// The program is unit-tested by interpreting it with golang.org/x/net/bpf on
// synthetic seccomp_data records, and against the real kernel in a
// subprocess.
package seccomp
