package linux

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/skillbox-dev/skillbox/internal/cgroup"
	"golang.org/x/sys/unix"
)

// cloneFlags are the namespaces every jail gets. A user namespace is
// added when the host process is not root.
const cloneFlags = syscall.CLONE_NEWPID | syscall.CLONE_NEWNS | syscall.CLONE_NEWNET |
	syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS | syscall.CLONE_NEWCGROUP

var jailSeq atomic.Uint64

// jail is one running jail: a process that is pid 1 of its own pid
// namespace (so killing it kills everything in the jail) in its own cgroup.
type jail struct {
	cmd  *exec.Cmd
	cg   *cgroup.Group
	done chan struct{} // closed once pid 1 has been reaped
}

// launch describes a jail to start.
type launch struct {
	cfg    jailConfig
	fd3    *os.File // request (or zygote control socket)
	fd4    *os.File // reply, may be nil
	stdout *os.File
	stderr *os.File
	limits cgroup.Limits
}

// startJail creates the jail's cgroup, forks the init stage into it from
// a thread attached to that cgroup, sends the config and waits until the
// init stage has exec'd the program (or reports why it could not).
func (b *box) startJail(l launch) (*jail, error) {
	j := &jail{done: make(chan struct{})}
	if b.cgHost != nil && len(b.controllers) > 0 {
		name := strconv.Itoa(os.Getpid()) + "-" + strconv.FormatUint(jailSeq.Add(1), 10)
		cg, err := b.cgHost.New(name, l.limits, b.controllers)
		if err != nil {
			return nil, err
		}
		j.cg = cg
	}
	fail := func(err error) (*jail, error) {
		if j.cg != nil {
			j.cg.Remove()
		}
		return nil, err
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fail(err)
	}
	parent, child := os.NewFile(uintptr(fds[0]), "jail-config"), os.NewFile(uintptr(fds[1]), "jail-config")
	defer parent.Close()
	cmd := &exec.Cmd{
		Path:       "/proc/self/exe",
		Args:       []string{initArg0},
		Env:        []string{},
		Stdout:     l.stdout,
		Stderr:     l.stderr,
		ExtraFiles: []*os.File{l.fd3, l.fd4, child},
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: cloneFlags,
			// The jail must not outlive the host process.
			Pdeathsig: syscall.SIGKILL,
		},
	}
	if l.cfg.UserNS {
		cmd.SysProcAttr.Cloneflags |= syscall.CLONE_NEWUSER
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
		cmd.SysProcAttr.GidMappingsEnableSetgroups = false
	}
	if j.cg != nil {
		if fd, err := j.cg.FD(); err != nil {
			child.Close()
			return fail(err)
		} else if fd >= 0 {
			defer unix.Close(fd)
			cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, fd
		}
	}
	if err := startInGroup(cmd, j.cg); err != nil {
		child.Close()
		return fail(fmt.Errorf("start jail: %w", err))
	}
	child.Close()
	j.cmd = cmd
	go func() {
		cmd.Wait()
		close(j.done)
	}()
	cfg, _ := json.Marshal(&l.cfg)
	msg := binary.BigEndian.AppendUint32(nil, uint32(len(cfg)))
	if _, err := parent.Write(append(msg, cfg...)); err != nil {
		j.destroy()
		return nil, fmt.Errorf("send jail config: %w", err)
	}
	// EOF without a message means the program was exec'd.
	parent.SetReadDeadline(time.Now().Add(30 * time.Second))
	why, err := io.ReadAll(io.LimitReader(parent, 4096))
	if err != nil || len(why) > 0 {
		j.destroy()
		if err != nil {
			return nil, fmt.Errorf("jail setup: %w", err)
		}
		return nil, fmt.Errorf("jail setup: %s", why)
	}
	return j, nil
}

// startInGroup starts cmd from an OS thread attached to cg (v1), so the
// child is born in the group without a cgroup.procs migration.
func startInGroup(cmd *exec.Cmd, cg *cgroup.Group) error {
	if cg == nil {
		return cmd.Start()
	}
	runtime.LockOSThread()
	restore, err := cg.Attach()
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	err = cmd.Start()
	if rerr := restore(); rerr != nil {
		// Leave the thread locked to this goroutine: a thread stuck in a
		// jail's cgroup must not run other goroutines, and the runtime
		// discards it when this goroutine exits still locked.
		return fmt.Errorf("%v (and %w)", err, rerr)
	}
	runtime.UnlockOSThread()
	return err
}

// kill kills pid 1 and with it the whole pid namespace.
func (j *jail) kill() {
	if j.cmd != nil && j.cmd.Process != nil {
		j.cmd.Process.Signal(syscall.SIGKILL)
	}
}

// destroy kills the jail, waits for it and removes its cgroup.
func (j *jail) destroy() {
	j.kill()
	if j.cmd != nil {
		select {
		case <-j.done:
		case <-time.After(10 * time.Second):
		}
	}
	if j.cg != nil {
		j.cg.Remove()
	}
}

// alive reports whether pid 1 is still running.
func (j *jail) alive() bool {
	select {
	case <-j.done:
		return false
	default:
		return true
	}
}
