package gvisor

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/backend"
	"github.com/skillbox-dev/skillbox/internal/cgroup"
	"github.com/skillbox-dev/skillbox/internal/egress"
	"github.com/skillbox-dev/skillbox/internal/image"
	"github.com/skillbox-dev/skillbox/internal/imageroot"
	"github.com/skillbox-dev/skillbox/internal/jail"
	"github.com/skillbox-dev/skillbox/internal/netns"
	"github.com/skillbox-dev/skillbox/internal/pyinterp"
	"github.com/skillbox-dev/skillbox/internal/worker"
	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/skill"
)

// box is the gvisor Sandbox for one Spec.
type box struct {
	d           *Driver
	spec        sandbox.Spec
	lim         sandbox.Limits
	judge       backend.Judge // a failed call's error, in the gvisor backend's words
	warnings    []string
	reqNames    []string
	runsc       string
	cgHost      *cgroup.Host
	controllers []string
	// interp is the host interpreter a skill outside an image runs on;
	// container the image a Spec.Container skill runs in.
	interp    *pyinterp.Interpreter
	container *imageroot.Root
	// dir is the sandbox's private folder: its bundle and runsc's state.
	dir    string
	bundle *bundle
	run    runner
	// net is the network grant (nil: none); outsideAudit receives the
	// egress decisions made outside any call of a session (Open's sink).
	net          *netGrant
	outsideAudit func(egress.Event)

	closeOnce sync.Once
	closed    chan struct{}
}

// runner is how a box runs calls (a sandbox per call, or a session's).
type runner interface {
	call(ctx context.Context, req sandbox.Request) (*sandbox.Result, error)
	close()
}

// argv is the container's process: the relay and the harness on python.
func (b *box) argv(python string) []string { return worker.RelayArgv(python) }

// Call runs one call.
func (b *box) Call(ctx context.Context, req sandbox.Request) (*sandbox.Result, error) {
	select {
	case <-b.closed:
		return nil, errdefs.New(errdefs.Invalid, "sandbox for %s is closed", b.spec.SkillID)
	default:
	}
	res, err := b.run.call(ctx, req)
	if res != nil {
		res.Warnings = append(res.Warnings, b.warnings...)
	}
	return res, err
}

// Close stops every gVisor sandbox of the box and removes its folder.
func (b *box) Close() error {
	b.closeOnce.Do(func() {
		close(b.closed)
		b.run.close()
		b.release()
	})
	return nil
}

// release removes the private folder and drops the image's in-use mark.
func (b *box) release() {
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
	if b.container != nil {
		b.container.Release()
	}
}

// runscCmd is runsc on the box's state folder.
func (b *box) runscCmd() *runscCmd {
	return &runscCmd{bin: b.runsc, root: b.bundle.state, platform: b.d.opts.Platform, hostNet: b.net != nil}
}

// cgLimits are the limits of one gVisor sandbox's cgroup: the call's plus
// the allowances for gVisor's own processes.
func (b *box) cgLimits() cgroup.Limits {
	return cgroup.Limits{Memory: b.lim.Memory + MemoryAllowance, Pids: b.lim.Pids + PidsAllowance, CPU: b.lim.CPU}
}

// proc is one running gVisor sandbox: `runsc run` of the box's bundle,
// born in its own cgroup with everything runsc starts.
type proc struct {
	*worker.Process
	id string
	cg *cgroup.Group
	rs *runscCmd
	// proxy is the sandbox's egress proxy (a grant), served by net once
	// runsc started; netDir is its start's bundle folder.
	proxy  *egress.Proxy
	net    *jail.Running
	netDir string
	// keep, with a network grant, holds the thread that started runsc in
	// its network namespace until runsc ended: runsc's parent-death
	// signal follows that thread. closeNet closes it.
	keep chan struct{}
}

// start starts a gVisor sandbox running the harness behind the relay.
// It lives until destroy, or until ctx is done. With a network grant its
// egress proxy reports to audit until the proc's net says otherwise.
func (b *box) start(ctx context.Context, audit func(egress.Event)) (*proc, error) {
	p := &proc{id: containerID(), rs: b.runscCmd()}
	bundleDir := b.bundle.dir
	launch := func(cmd *exec.Cmd) error { return p.cg.Start(cmd) } // p.cg as set below
	if b.net != nil {
		ns, err := b.net.prepare(b, p.id, audit)
		if err != nil {
			return nil, err
		}
		p.proxy, p.net, p.netDir, bundleDir = ns.proxy, &jail.Running{}, ns.dir, ns.dir
		p.keep = make(chan struct{})
		launch = func(cmd *exec.Cmd) error {
			l, err := netns.Start(jail.ProxyAddr, func() error { return p.cg.Start(cmd) }, p.keep)
			if err != nil {
				return err
			}
			p.net.Serve(p.proxy, l, audit)
			return nil
		}
	}
	if b.cgHost != nil && len(b.controllers) > 0 {
		cg, err := b.cgHost.New(strconv.Itoa(os.Getpid())+"-gvisor-"+strconv.FormatUint(seq.Add(1), 10), b.cgLimits(), b.controllers)
		if err != nil {
			p.closeNet()
			return nil, errdefs.Wrap(errdefs.Internal, err, "backend gvisor: sandbox cgroup")
		}
		p.cg = cg
	}
	argv := p.rs.args("run", "--bundle", bundleDir, p.id)
	cmd := &exec.Cmd{Path: argv[0], Args: argv, Env: runscEnv}
	// runsc must not outlive skillbox: `runsc run` (attached, not
	// --detach) kills its sandbox and gofer when it dies, but nothing
	// ended runsc itself when skillbox was killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	wp, err := worker.StartWith(ctx, cmd, b.lim.Stdio, worker.StartOptions{Relay: true, Launch: launch})
	if err != nil {
		p.closeNet()
		if p.cg != nil {
			lerr := b.startLimit(p.cg, err)
			p.cg.Remove()
			if lerr != err {
				return nil, lerr
			}
		}
		return nil, errdefs.Wrap(errdefs.Internal, err, "backend gvisor: runsc run")
	}
	p.Process = wp
	return p, nil
}

// exitGrace is how long destroy lets a sandbox whose harness replied, and
// whose output ended, end by itself: runsc then removes its own state,
// which is faster than `runsc delete --force` after a kill (~1 s). runsc
// ends ~15 ms after the reply, up to ~100 ms while the package's tests run
// in parallel; what still runs past the grace is code the skill controls
// (a patched harness: docs/RATIONALE.md, "Walls between calls"), and is
// killed.
const exitGrace = 250 * time.Millisecond

// destroy ends the sandbox: after up to wait for it to end by itself, it
// kills its cgroup, has runsc force-delete the container if runsc's state
// still holds it, waits for runsc and removes the cgroup.
func (p *proc) destroy(wait time.Duration) {
	if wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-p.Done():
		case <-t.C:
		}
		t.Stop()
	}
	if p.cg != nil {
		p.cg.Kill()
	}
	if !p.Exited() {
		p.rs.delete(p.id)
	}
	p.Close()
	p.rs.delete(p.id) // runsc killed before it cleaned up after itself
	if p.cg != nil {
		p.cg.Remove()
	}
	p.closeNet()
}

// closeNet lets go of the thread that started runsc (it has ended, or
// never started), stops the sandbox's egress proxy (closing its listener)
// and removes its start's bundle folder.
func (p *proc) closeNet() {
	if p.keep != nil {
		close(p.keep)
		p.keep = nil
	}
	if p.proxy != nil {
		p.proxy.Close() // not served yet, if runsc did not start
		p.net.Close()   // waits for Serve
	}
	if p.netDir != "" {
		os.RemoveAll(p.netDir)
	}
}

// initMsg is the harness's init message for mode.
func (b *box) initMsg(mode string) worker.Init {
	return worker.Init{Type: worker.TypeInit, Bundle: jail.SkillDir, Manifest: b.spec.Manifest, Mode: mode, Requirements: b.reqNames}
}

// initWorker sends init and checks the skill's requirements against what
// the interpreter reported.
func (b *box) initWorker(ctx context.Context, p *proc, mode string) error {
	rep, err := p.Init(ctx, b.initMsg(mode))
	if pk, ok := worker.PackagesOf(rep, err); ok {
		if rerr := backend.CheckRequirements(b.spec.Requirements, pk, b.interpName(), b.requirementsHint()); rerr != nil {
			return rerr
		}
	}
	if err != nil && backend.CallTimedOut(ctx, err) {
		return b.judge.TimeoutErr(ctx)
	}
	if err != nil && b.container != nil {
		wctx, cancel := context.WithTimeout(ctx, time.Second)
		p.WaitOutput(wctx) // the worker exited: its stderr ends soon
		cancel()
		err = b.container.ExitedErr(err, p.Stderr.Bytes())
	}
	return err
}

// startBound bounds what happens before the skill's call (a sandbox, an
// interpreter, the skill's import): the call's timeout plus the start
// allowance, as on the linux backend.
func (b *box) startBound() time.Duration { return b.lim.Timeout + backend.StartAllowance }

// startErr is what the caller sees when getting a sandbox ready failed.
// It keeps what the skill printed while it was imported.
func (b *box) startErr(ctx, sctx context.Context, err error) error {
	if ctx.Err() == nil && errors.Is(sctx.Err(), context.DeadlineExceeded) {
		return errdefs.WithOutputOf(errdefs.New(errdefs.Timeout, "call to %s: no gVisor sandbox was ready within %v (runsc, Python and the skill's import); the skill was not called",
			b.spec.SkillID, b.startBound()), err)
	}
	if ctx.Err() != nil {
		return errdefs.WithOutputOf(b.judge.TimeoutErr(ctx), err)
	}
	return err
}

// printedBefore is what the skill printed before p's worker failed, as a
// Result holding only that; p is killed after. The relay forwards the
// skill's output apart from the protocol, so that output may arrive after
// the worker's error reply: its end is waited for first (within
// backend.OutputGrace, as for a skill still running after its timeout).
// Killing the sandbox first lost what the relay had not forwarded yet.
func (p *proc) printedBefore(ctx context.Context) *sandbox.Result {
	r := backend.PrintedBefore(ctx, p.WaitOutput, p.Stdout, p.Stderr)
	if p.cg != nil {
		p.cg.Kill()
	}
	return r
}

// loadFailed ends p, whose worker failed before its call, and returns err
// carrying what the skill printed until then.
func (p *proc) loadFailed(ctx context.Context, err error) error {
	r := p.printedBefore(ctx)
	return errdefs.WithOutput(err, r.Stdout, r.Stderr)
}

// startLimit is the error of a sandbox that failed before the skill was
// ready: the limit its cgroup counted, or err.
func (b *box) startLimit(cg *cgroup.Group, err error) error {
	if errors.Is(err, cgroup.ErrOverLimit) {
		return &errdefs.LimitError{Resource: "memory", Limit: skill.FormatSize(b.lim.Memory),
			Detail: "runsc already used more before the sandbox started"}
	}
	if lerr := b.judge.LimitHit(cg, cgroup.Counts{}); lerr != nil {
		return lerr
	}
	return err
}

// cold runs every call in a gVisor sandbox of its own.
type cold struct {
	b *box
	// teardown tracks sandboxes being destroyed after their call returned.
	teardown sync.WaitGroup
}

func (c *cold) call(ctx context.Context, req sandbox.Request) (*sandbox.Result, error) {
	b := c.b
	sctx, scancel := context.WithTimeout(ctx, b.startBound())
	defer scancel()
	// The sandbox is not tied to the call's context: destroy ends it, after
	// letting one whose harness has replied end by itself (runsc then
	// removes its own state).
	p, err := b.start(context.WithoutCancel(sctx), egress.AuditFrom(ctx))
	if err != nil {
		return nil, b.startErr(ctx, sctx, err)
	}
	// The sandbox is destroyed after the call returns (it ends by itself
	// once the harness has replied); Close waits.
	c.teardown.Add(1)
	wait := time.Duration(0)
	defer func() {
		go func() {
			defer c.teardown.Done()
			p.destroy(wait)
		}()
	}()
	p.Conn.SetMaxResult(int(b.lim.Output))
	if err := b.initWorker(sctx, p, worker.ModeSingle); err != nil {
		err = b.judge.CallError(sctx, err, p.cg, cgroup.Counts{})
		return nil, p.loadFailed(ctx, b.startErr(ctx, sctx, err))
	}
	ctx, cancel := context.WithTimeout(ctx, b.lim.Timeout)
	defer cancel()
	value, err := p.Call(ctx, 1, req.Params, req.Config)
	if err != nil {
		err = b.judge.CallError(ctx, err, p.cg, cgroup.Counts{})
		// Destroyed after the call anyway: killed once its output ended,
		// or after backend.OutputGrace.
		return p.printedBefore(ctx), err
	}
	// The relay says when the skill's output is complete.
	if err := p.WaitOutput(ctx); err != nil {
		return nil, b.judge.TimeoutErr(ctx)
	}
	wait = exitGrace
	return backend.NewResult(value, p.Stdout, p.Stderr), nil
}

func (c *cold) close() { c.teardown.Wait() }

// session runs every call of the Sandbox in one session-mode worker in one
// gVisor sandbox (module state persists, by request). Calls are
// serialized. A worker that dies, times out or breaks the protocol is
// replaced at the next call, with fresh state.
type session struct {
	b  *box
	mu sync.Mutex
	p  *proc
	id uint64
}

func (s *session) call(ctx context.Context, req sandbox.Request) (*sandbox.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.b
	if s.p != nil && s.p.Exited() {
		s.stop()
	}
	if s.p == nil {
		sctx, scancel := context.WithTimeout(ctx, b.startBound())
		// The sandbox outlives this call's context.
		p, err := b.start(context.WithoutCancel(sctx), b.outsideAudit)
		if err == nil {
			p.Conn.SetMaxResult(int(b.lim.Output))
			if err = b.initWorker(sctx, p, worker.ModeSession); err != nil {
				err = p.loadFailed(ctx, b.judge.CallError(sctx, err, p.cg, cgroup.Counts{}))
				p.destroy(0)
			} else {
				// What the import printed goes with the start.
				backend.SettleOutput(ctx, p.SettleOutput)
			}
		}
		scancel()
		if err != nil {
			return nil, b.startErr(ctx, sctx, err)
		}
		s.p, s.id = p, 0
	}
	ctx, cancel := context.WithTimeout(ctx, b.lim.Timeout)
	defer cancel()
	p := s.p
	p.Stdout.Reset()
	p.Stderr.Reset()
	s.id++
	before := cgroup.Snapshot(p.cg)
	if p.net != nil {
		p.net.BeginCall(ctx)
		defer p.net.EndCall()
	}
	value, err := p.Call(ctx, s.id, req.Params, req.Config)
	if err != nil {
		err = b.judge.CallError(ctx, err, p.cg, before)
		if p.Conn.Broken() {
			s.stop() // dead, too slow or out of step: start over next time
		} else {
			backend.SettleOutput(ctx, p.SettleOutput)
		}
		// What it printed: the session's process lives on.
		return backend.NewResult(nil, p.Stdout, p.Stderr), err
	}
	backend.SettleOutput(ctx, p.SettleOutput)
	return backend.NewResult(value, p.Stdout, p.Stderr), nil
}

func (s *session) stop() {
	if s.p != nil {
		s.p.destroy(0)
		s.p = nil
	}
}

func (s *session) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stop()
}

// checkPython makes sure the image's python can run the harness before
// any call (imageroot: once per image and interpreter, recorded beside the
// unpacked image): it runs the python with image.PythonProbeArgs in a
// gVisor sandbox of its own — the image's root, without the bundle,
// granted variables or read paths — and judges what it printed.
func (b *box) checkPython(ctx context.Context, root jail.Root) error {
	c := b.container
	if err, ok := c.Recorded(); ok {
		return err
	}
	dir, err := os.MkdirTemp(b.dir, "python-")
	if err != nil {
		return errdefs.Wrap(errdefs.Internal, err, "backend gvisor: python check")
	}
	pb, err := writeBundle(dir, root, sandbox.Spec{}, append([]string{c.Root.Python}, image.PythonProbeArgs...), nil)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, imageroot.PythonProbeTimeout)
	defer cancel()
	rs := &runscCmd{bin: b.runsc, root: pb.state, platform: b.d.opts.Platform}
	id := containerID()
	argv := rs.args("run", "--bundle", pb.dir, id)
	stdout, stderr := worker.NewCapture(4096), worker.NewCapture(4096)
	cmd := &exec.Cmd{Path: argv[0], Args: argv, Env: runscEnv, Stdout: stdout, Stderr: stderr, WaitDelay: time.Second}
	var cg *cgroup.Group
	if b.cgHost != nil && len(b.controllers) > 0 {
		if cg, err = b.cgHost.New(strconv.Itoa(os.Getpid())+"-gvisor-"+strconv.FormatUint(seq.Add(1), 10), b.cgLimits(), b.controllers); err != nil {
			return errdefs.Wrap(errdefs.Internal, err, "backend gvisor: sandbox cgroup")
		}
		defer cg.Remove()
	}
	if err := cg.Start(cmd); err != nil {
		return errdefs.Wrap(errdefs.Internal, err, "backend gvisor: runsc run (python version of image "+c.Pinned.String()+")")
	}
	stop := context.AfterFunc(ctx, func() {
		if cg != nil {
			cg.Kill()
		}
		cmd.Process.Kill()
	})
	werr := cmd.Wait()
	stop()
	rs.delete(id)
	return c.Probed(stdout.Bytes(), stderr.Bytes(), werr, ctx.Err() != nil)
}
