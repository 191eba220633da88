//go:build linux

package seccomp

import "golang.org/x/sys/unix"

// archHardening are the architecture's own calls TestHardeningDenied expects refused.
var archHardening = []uintptr{unix.SYS_MODIFY_LDT}
