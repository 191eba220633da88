//go:build linux

package seccomp

// archHardening are the architecture's own calls TestHardeningDenied expects refused: arm64
// has no modify_ldt.
var archHardening = []uintptr{}
