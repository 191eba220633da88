//go:build linux

package seccomp

import "golang.org/x/sys/unix"

// nativeArch is the AUDIT_ARCH value of the only ABI the filter allows.
const nativeArch = unix.AUDIT_ARCH_X86_64

// x32Bit marks x32-ABI syscall numbers on x86_64; such calls are refused.
const x32Bit = 0x40000000

// archOnly lists denied syscalls that exist only on this architecture.
// modify_ldt installs code and data segments of the process's own: the
// base of several kernel exploits (and of 16-bit code), needed by nothing
// a skill runs. x86_64 has no ipc(2) multiplexer (SysV IPC has its own
// calls, denied in the common list).
var archOnly = []uintptr{unix.SYS_IOPL, unix.SYS_IOPERM, unix.SYS_USELIB, unix.SYS_MODIFY_LDT}
