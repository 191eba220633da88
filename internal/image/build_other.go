//go:build !linux

package image

import (
	"errors"
	"net"
	"os/exec"
)

// buildsSupported: builds run Linux containers, on Linux only.
const buildsSupported = false

func startGroup(*exec.Cmd) {}

func killGroup(cmd *exec.Cmd) { cmd.Process.Kill() }

func startIn(string, func() error, <-chan struct{}) (net.Listener, error) {
	return nil, errors.New("image builds run on Linux only")
}
