//go:build !linux

package image

import "os/exec"

// buildsSupported: builds run Linux containers, on Linux only.
const buildsSupported = false

func startGroup(*exec.Cmd) {}

func killGroup(cmd *exec.Cmd) { cmd.Process.Kill() }
