//go:build linux

package seccomp

import "golang.org/x/sys/unix"

// nativeArch is the AUDIT_ARCH value of the only ABI the filter allows.
const nativeArch = unix.AUDIT_ARCH_AARCH64

// x32Bit is zero: arm64 has no x32-style alternate numbering.
const x32Bit = 0

// archOnly lists denied syscalls that exist only on this architecture.
var archOnly = []uintptr{}
