package process

import (
	"os/exec"
	"syscall"
)

// dieWithHost has the worker killed when skillbox dies (a parent-death
// signal), so that a skillbox killed outright (kill -9, a client's hard
// timeout) leaves no skill code running. The kernel sends it when the
// thread that started the worker ends, which Go's threads do only with
// the process, or with a goroutine that locked its thread and did not
// unlock it: a call made from such a goroutine must end before it does.
func dieWithHost(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
