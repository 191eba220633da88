package linux

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/cgroup"
	"github.com/skillbox-dev/skillbox/internal/egress"
	"github.com/skillbox-dev/skillbox/internal/worker"
	"github.com/skillbox-dev/skillbox/sandbox"
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
	// proxy serves the jail's network grant (nil without one); served is
	// closed when its Serve returned.
	proxy     *egress.Proxy
	served    chan struct{}
	idleAudit func(egress.Event) // the proxy's sink between calls
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
			lerr := b.startLimit(j.cg, err)
			j.cg.Remove()
			if lerr != err {
				return nil, lerr
			}
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
	cfg.Argv = worker.Argv(b.interp.Command)
	var proxy *egress.Proxy
	var proxyListener *os.File
	// Decisions outside a call go to the sandbox's own sink (given to
	// Open), whoever started the jail: a zygote or session jail outlives the
	// call that started it, and a reaper-started one has no call at all.
	// A cold jail lives for its one call.
	outside := b.outsideAudit
	if !zygote && b.spec.Mode != sandbox.ModeSession {
		outside = egress.AuditFrom(ctx)
	}
	if b.egress != nil {
		if proxy, err = b.newProxy(&cfg, outside); err != nil {
			return fail(err)
		}
		defer func() {
			if proxy != nil { // not handed to the jail
				proxy.Close()
			}
			if proxyListener != nil {
				proxyListener.Close()
			}
		}()
	}
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
	launch := func(cmd *exec.Cmd) error {
		if err := j.cg.Start(cmd); err != nil {
			return err
		}
		child.Close()
		lf, err := sendConfig(parent, &cfg)
		if err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			return err
		}
		proxyListener = lf
		return nil
	}
	p, err := worker.StartWith(ctx, cmd, stdioCap, worker.StartOptions{Launch: launch, Zygote: zygote})
	if err != nil {
		return fail(err)
	}
	j.Process = p
	if proxy != nil {
		lf := proxyListener
		proxyListener = nil
		if err := j.serveProxy(proxy, lf, outside); err != nil {
			j.Close()
			return fail(fmt.Errorf("egress listener: %w", err))
		}
		proxy = nil // the jail's now
	}
	return j, nil
}

// sendConfig hands the init stage its config and waits until it exec'd the
// program: EOF without a message. Anything else is the reason it could not.
// With cfg.Egress, the init stage first sends one zero byte carrying the
// proxy's listening socket (SCM_RIGHTS), which sendConfig returns.
func sendConfig(sock *os.File, cfg *jailConfig) (*os.File, error) {
	b, _ := json.Marshal(cfg)
	msg := binary.BigEndian.AppendUint32(nil, uint32(len(b)))
	if _, err := sock.Write(append(msg, b...)); err != nil {
		return nil, fmt.Errorf("send jail config: %w", err)
	}
	sock.SetReadDeadline(time.Now().Add(30 * time.Second))
	var lf *os.File
	var why []byte
	if cfg.Egress != nil {
		var err error
		if lf, why, err = recvListener(sock); err != nil {
			return nil, fmt.Errorf("jail setup: %w", err)
		}
	}
	rest, err := io.ReadAll(io.LimitReader(sock, 4096))
	why = append(why, rest...)
	if err == nil && len(why) == 0 && cfg.Egress != nil && lf == nil {
		err = errors.New("no egress listener from the init stage")
	}
	if err != nil || len(why) > 0 {
		if lf != nil {
			lf.Close()
		}
		if err != nil {
			return nil, fmt.Errorf("jail setup: %w", err)
		}
		return nil, fmt.Errorf("jail setup: %s", why)
	}
	return lf, nil
}

// recvListener reads the init stage's first message: a zero byte with the
// proxy's listening socket, or (when setup failed first) the start of an
// error message, returned as why.
func recvListener(sock *os.File) (lf *os.File, why []byte, err error) {
	rc, err := sock.SyscallConn()
	if err != nil {
		return nil, nil, err
	}
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	var n, oobn int
	var rerr error
	if err := rc.Read(func(fd uintptr) bool {
		n, oobn, _, _, rerr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_CMSG_CLOEXEC)
		return rerr != unix.EAGAIN
	}); err != nil {
		return nil, nil, err
	}
	if rerr != nil {
		return nil, nil, rerr
	}
	var fds []int
	if oobn > 0 {
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return nil, nil, err
		}
		for _, m := range msgs {
			if r, err := unix.ParseUnixRights(&m); err == nil {
				fds = append(fds, r...)
			}
		}
	}
	if n >= 1 && buf[0] == 0 && len(fds) == 1 {
		return os.NewFile(uintptr(fds[0]), "egress-listener"), buf[1:n], nil
	}
	for _, fd := range fds {
		unix.Close(fd)
	}
	return nil, buf[:n], nil
}

// destroy kills the jail, waits for it, stops its egress proxy and removes
// its cgroup.
func (j *jail) destroy() {
	j.Close()
	j.closeProxy()
	if j.cg != nil {
		j.cg.Remove()
	}
}
