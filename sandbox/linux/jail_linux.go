package linux

import (
	"context"
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

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/cgroup"
	"github.com/skillbox-dev/skillbox/worker"
	"golang.org/x/sys/unix"
)

// cloneFlags are the namespaces every jail gets. A user namespace is
// added when the host process is not root.
const cloneFlags = syscall.CLONE_NEWPID | syscall.CLONE_NEWNS | syscall.CLONE_NEWNET |
	syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS | syscall.CLONE_NEWCGROUP

var jailSeq atomic.Uint64

// jail is one running jail: a worker process that is pid 1 of its own pid
// namespace (so killing it kills everything in the jail), in its own cgroup.
type jail struct {
	*worker.Process
	cg *cgroup.Group
}

// startJail creates the jail's cgroup, forks the init stage into it from a
// thread attached to that cgroup, sends the config and waits until the
// init stage has exec'd the harness (or reports why it could not). The
// harness gets the protocol pipes, or the zygote control socket when
// zygote is set; its stdout and stderr are captured in stdioCap bytes each.
// The jail lives until destroy (or until ctx is done).
func (b *box) startJail(ctx context.Context, zygote bool, stdioCap int64) (*jail, error) {
	j := &jail{}
	if b.cgHost != nil && len(b.controllers) > 0 {
		name := strconv.Itoa(os.Getpid()) + "-" + strconv.FormatUint(jailSeq.Add(1), 10)
		cg, err := b.cgHost.New(name, b.cgLimits(), b.controllers)
		if err != nil {
			return nil, errdefs.Wrap(errdefs.Internal, err, "jail cgroup")
		}
		j.cg = cg
	}
	fail := func(err error) (*jail, error) {
		if j.cg != nil {
			j.cg.Remove()
		}
		return nil, errdefs.Wrap(errdefs.Internal, err, "start jail")
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fail(err)
	}
	parent, child := os.NewFile(uintptr(fds[0]), "jail-config"), os.NewFile(uintptr(fds[1]), "jail-config")
	defer parent.Close()
	defer child.Close()
	cfg := b.base
	cfg.Argv = worker.Argv(b.interp.Executable)
	cmd := &exec.Cmd{
		Path: "/proc/self/exe",
		Args: []string{initArg0},
		Env:  []string{},
		// worker puts the protocol descriptors at 3 and 4: this is fd 5.
		ExtraFiles: []*os.File{child},
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: cloneFlags,
			// The jail must not outlive the host process.
			Pdeathsig: syscall.SIGKILL,
		},
	}
	if cfg.UserNS {
		cmd.SysProcAttr.Cloneflags |= syscall.CLONE_NEWUSER
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
		cmd.SysProcAttr.GidMappingsEnableSetgroups = false
	}
	if j.cg != nil {
		fd, err := j.cg.FD()
		if err != nil {
			return fail(err)
		}
		if fd >= 0 {
			defer unix.Close(fd)
			cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, fd
		}
	}
	launch := func(cmd *exec.Cmd) error {
		if err := startInGroup(cmd, j.cg); err != nil {
			return err
		}
		child.Close()
		if err := sendConfig(parent, &cfg); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			return err
		}
		return nil
	}
	p, err := worker.StartWith(ctx, cmd, stdioCap, worker.StartOptions{Launch: launch, Zygote: zygote})
	if err != nil {
		return fail(err)
	}
	j.Process = p
	return j, nil
}

// sendConfig hands the init stage its config and waits until it exec'd the
// program: EOF without a message. Anything else is the reason it could not.
func sendConfig(sock *os.File, cfg *jailConfig) error {
	b, _ := json.Marshal(cfg)
	msg := binary.BigEndian.AppendUint32(nil, uint32(len(b)))
	if _, err := sock.Write(append(msg, b...)); err != nil {
		return fmt.Errorf("send jail config: %w", err)
	}
	sock.SetReadDeadline(time.Now().Add(30 * time.Second))
	why, err := io.ReadAll(io.LimitReader(sock, 4096))
	if err != nil {
		return fmt.Errorf("jail setup: %w", err)
	}
	if len(why) > 0 {
		return fmt.Errorf("jail setup: %s", why)
	}
	return nil
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

// destroy kills the jail, waits for it and removes its cgroup.
func (j *jail) destroy() {
	j.Close()
	if j.cg != nil {
		j.cg.Remove()
	}
}
