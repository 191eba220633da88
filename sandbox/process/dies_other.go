//go:build !linux

package process

import "os/exec"

// dieWithHost does nothing: only Linux has a parent-death signal.
func dieWithHost(*exec.Cmd) {}
