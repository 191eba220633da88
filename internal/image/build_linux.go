package image

import (
	"net"
	"os/exec"
	"syscall"

	"github.com/skillbox-dev/skillbox/internal/netns"
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

// startIn starts the builder (start) in a network namespace of its own
// holding only loopback and the returned listener on addr (netns.Start).
func startIn(addr string, start func() error, keep <-chan struct{}) (net.Listener, error) {
	return netns.Start(addr, start, keep)
}
