package image

import (
	"os/exec"
	"syscall"
)

// buildsSupported: builds run Linux containers, on Linux only.
const buildsSupported = true

// startGroup makes cmd the leader of a process group of its own, killed
// with skillbox (Pdeathsig), so killGroup reaches the runc it starts.
func startGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup kills cmd's process group.
func killGroup(cmd *exec.Cmd) { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
