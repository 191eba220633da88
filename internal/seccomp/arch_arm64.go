//go:build linux

package seccomp

import "golang.org/x/sys/unix"

// nativeArch is the AUDIT_ARCH value of the only ABI the filter allows.
const nativeArch = unix.AUDIT_ARCH_AARCH64

// x32Bit is zero: arm64 has no x32-style alternate numbering.
const x32Bit = 0

// archOnly lists denied syscalls that exist only on this architecture:
// none. arm64 has no modify_ldt (no LDT) and no ipc(2) multiplexer (SysV
// IPC has its own calls, denied in the common list).
var archOnly = []uintptr{}
