package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
)

// newPipe returns a pipe whose host end (the read end if hostReads) is
// pollable, for deadlines. The child end becomes blocking when it is handed
// over (exec's ExtraFiles and SCM_RIGHTS both go through File.Fd). Both are
// close-on-exec.
func newPipe(hostReads bool) (host, child *os.File, err error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	if hostReads {
		return r, w, nil
	}
	return w, r, nil
}

// Pipes makes the two protocol pipes. child holds the worker's ends in fd
// order — request read end (fd 3), reply write end (fd 4) — ready for
// exec.Cmd.ExtraFiles (close them once the worker started). w (requests) and
// r (replies) are the host's pollable ends, for NewConn.
func Pipes() (child []*os.File, w, r *os.File, err error) {
	w, creq, err := newPipe(false)
	if err != nil {
		return nil, nil, nil, err
	}
	r, crep, err := newPipe(true)
	if err != nil {
		w.Close()
		creq.Close()
		return nil, nil, nil, err
	}
	return []*os.File{creq, crep}, w, r, nil
}

// ExitError describes a worker that died before replying, as an
// *errdefs.SkillError of type WorkerExited: "worker exited with code 3" or
// "worker killed by signal 9 (SIGKILL)". stderrTail (the end of the worker's
// stderr, if any) becomes the Traceback.
func ExitError(state *os.ProcessState, stderrTail []byte) error {
	if state == nil {
		return &errdefs.SkillError{Type: TypeWorkerExited, Message: "worker exited", Traceback: string(stderrTail)}
	}
	return exitStatusError(StatusOf(state), stderrTail)
}

// StatusOf returns how a finished process ended.
func StatusOf(state *os.ProcessState) ExitStatus {
	if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return ExitStatus{Signal: int(ws.Signal())}
	}
	return ExitStatus{Code: state.ExitCode()}
}

// ExitStatus is how a worker (or zygote child) ended: Signal is non-zero when
// a signal killed it, otherwise Code is its exit code.
type ExitStatus struct {
	Code   int
	Signal int
}

func (s ExitStatus) String() string {
	if s.Signal != 0 {
		name := signalName(s.Signal)
		if name == "" {
			return fmt.Sprintf("killed by signal %d", s.Signal)
		}
		return fmt.Sprintf("killed by signal %d (%s)", s.Signal, name)
	}
	return fmt.Sprintf("exited with code %d", s.Code)
}

func exitStatusError(s ExitStatus, tail []byte) error {
	return &errdefs.SkillError{Type: TypeWorkerExited, Message: "worker " + s.String(), Traceback: string(tail)}
}

// stderrTailSize is how much of stderr goes into a WorkerExited error.
const stderrTailSize = 2048

// Process is a started worker: a plain subprocess (the process backend,
// tests) or a sandbox's launcher that ends in the harness (the linux
// backend's jail). Protocol pipes are on fds 3 and 4, or, for a zygote, the
// control socket on fd 3; stdout and stderr are captured.
type Process struct {
	Cmd *exec.Cmd
	// Conn speaks to a single or session worker (nil for a zygote).
	Conn *Conn
	// Zygote drives a zygote-mode worker (nil otherwise).
	Zygote         *Zygote
	Stdout, Stderr *Capture

	done    chan struct{} // closed when Cmd.Wait returned
	waitErr error
	stopCtx func() bool

	// reapMu orders Kill before the reaping: once the worker is reaped its
	// pid, and so its process group's id, may be another process's, and
	// signalling it would hit a stranger.
	reapMu sync.Mutex
	reaped bool

	// output is closed when the captured stdout and stderr reached EOF;
	// outR are their read ends (nil when the caller set Cmd.Stdout/Stderr).
	output chan struct{}
	outR   []*os.File
	// pipes copy the captured stdout and stderr (none behind the relay).
	pipes []*outPipe
	// relay: the output comes through the relay. marks counts its output
	// marks (see SettleOutput); marked is closed and replaced at each.
	relay  bool
	markMu sync.Mutex
	marks  uint64
	marked chan struct{}
}

// StartOptions adjust how StartWith launches a worker.
type StartOptions struct {
	// Launch starts cmd in place of cmd.Start, e.g. from a thread attached
	// to a cgroup, and may wait for a sandbox's setup stage. It must not
	// wait for cmd to exit; if it fails after starting cmd, it must kill and
	// reap it.
	Launch func(*exec.Cmd) error
	// Zygote starts the harness in zygote mode: fd 3 is the control socket
	// (Process.Zygote), there is no fd 4, and Process.Conn is nil. Linux only.
	Zygote bool
	// Relay starts a harness behind the relay (cmd runs RelayArgv, maybe
	// through a sandbox runtime that passes only stdio on): the protocol
	// pipes become cmd's stdin and stdout instead of fds 3 and 4, and
	// cmd's stderr carries the relay's frames, demultiplexed into
	// Process.Stdout and Process.Stderr. Not with Zygote.
	Relay bool
}

// Start starts cmd (typically exec.Command(Argv(python)...) with Env and Dir
// set) as a worker; see StartWith.
func Start(ctx context.Context, cmd *exec.Cmd, stdioCap int64) (*Process, error) {
	return StartWith(ctx, cmd, stdioCap, StartOptions{})
}

// StartWith starts cmd as a worker. The protocol descriptors become fds 3
// and 4; descriptors already in cmd.ExtraFiles follow from fd 5 on (a
// sandbox's own setup channel). Nil Stdout/Stderr are captured into
// Captures of stdioCap bytes each. The worker gets its own process group;
// when ctx is done, the group is killed.
func StartWith(ctx context.Context, cmd *exec.Cmd, stdioCap int64, opts StartOptions) (*Process, error) {
	var child []*os.File
	var w, r, ctrl *os.File
	var err error
	if opts.Zygote {
		var c *os.File
		if ctrl, c, err = ZygotePair(); err != nil {
			return nil, err
		}
		child = []*os.File{c, nil}
	} else if child, w, r, err = Pipes(); err != nil {
		return nil, err
	}
	hostEnds := func() {
		for _, f := range []*os.File{w, r, ctrl} {
			if f != nil {
				f.Close()
			}
		}
	}
	p := &Process{Cmd: cmd, Stdout: NewCapture(stdioCap), Stderr: NewCapture(stdioCap),
		done: make(chan struct{}), output: make(chan struct{}), marked: make(chan struct{})}
	// Captured output goes through pipes of our own rather than exec's
	// copying goroutines, so that its end (EOF: the worker closed its
	// descriptors on exit) can be awaited without waiting for the process
	// to be reaped, which for a jail includes tearing down its namespaces.
	var outW []*os.File
	var captures []*Capture
	var mux *os.File
	if opts.Relay && !opts.Zygote {
		var muxW *os.File
		if mux, muxW, err = relayPipes(cmd, child); err != nil {
			hostEnds()
			for _, f := range child {
				f.Close()
			}
			return nil, err
		}
		p.outR, outW = []*os.File{mux}, []*os.File{muxW}
	}
	for _, c := range []struct {
		w   *io.Writer
		cap *Capture
	}{{&cmd.Stdout, p.Stdout}, {&cmd.Stderr, p.Stderr}} {
		if *c.w != nil {
			continue
		}
		r, w, err := os.Pipe()
		if err != nil {
			for _, f := range append(p.outR, outW...) {
				f.Close()
			}
			return nil, err
		}
		*c.w = w
		p.outR, outW, captures = append(p.outR, r), append(outW, w), append(captures, c.cap)
	}
	if cmd.WaitDelay == 0 {
		cmd.WaitDelay = time.Second
	}
	ownGroup(cmd)
	if mux == nil {
		cmd.ExtraFiles = append(child, cmd.ExtraFiles...)
	}
	launch := opts.Launch
	if launch == nil {
		launch = (*exec.Cmd).Start
	}
	err = launch(cmd)
	for _, f := range child {
		if f != nil {
			f.Close()
		}
	}
	for _, f := range outW {
		f.Close()
	}
	if err != nil {
		hostEnds()
		for _, f := range p.outR {
			f.Close()
		}
		return nil, err
	}
	if mux != nil {
		p.relay = true
		go func() {
			demux(mux, p.Stdout, p.Stderr, p.mark, sync.OnceFunc(func() { close(p.output) }))
			mux.Close()
		}()
	} else {
		var copying sync.WaitGroup
		for i, r := range p.outR {
			o := newOutPipe(r, captures[i])
			p.pipes = append(p.pipes, o)
			copying.Go(func() {
				o.copy()
				r.Close() // not left to the garbage collector
			})
		}
		go func() {
			copying.Wait()
			close(p.output)
		}()
	}
	if opts.Zygote {
		if p.Zygote, err = NewZygote(ctrl); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			return nil, err
		}
	} else {
		p.Conn = NewConn(w, r, 0)
	}
	go func() {
		pid := cmd.Process.Pid
		if waitExit(pid) {
			// Exited, not yet reaped: the pid is still the worker's. What
			// it left in its process group goes with it, then Kill stops
			// signalling before the pid is released.
			p.reapMu.Lock()
			killGroup(pid)
			p.reaped = true
			p.reapMu.Unlock()
			p.waitErr = cmd.Wait()
		} else {
			p.waitErr = cmd.Wait()
			p.reapMu.Lock()
			p.reaped = true
			p.reapMu.Unlock()
		}
		close(p.done)
	}()
	p.stopCtx = context.AfterFunc(ctx, p.Kill)
	return p, nil
}

// Init sends init and returns the ready reply (see Conn.Init and
// Zygote.Init). A worker that dies during init is reported with ExitError.
func (p *Process) Init(ctx context.Context, in Init) (*Reply, error) {
	var rep *Reply
	var err error
	if p.Zygote != nil {
		rep, err = p.Zygote.Init(ctx, in)
	} else {
		rep, err = p.Conn.Init(ctx, in)
	}
	if err != nil && errors.Is(err, ErrWorkerClosed) && !isLoadError(err) {
		return nil, p.exitError(ctx, err)
	}
	return rep, err
}

func isLoadError(err error) bool {
	var le *LoadError
	return errors.As(err, &le)
}

// Call runs one call (see Conn.Call). A worker that dies mid-call is
// reported with ExitError (exit code or signal, stderr tail).
func (p *Process) Call(ctx context.Context, id uint64, params json.RawMessage, config map[string]string) (json.RawMessage, error) {
	res, err := p.Conn.Call(ctx, id, params, config)
	if err != nil && errors.Is(err, ErrWorkerClosed) {
		return nil, p.exitError(ctx, err)
	}
	return res, err
}

// exitError waits (briefly) for the worker to end and describes how it did.
// Its stderr may still be in the pipe when it has been reaped: the tail is
// taken once the capture reached EOF, or after a short wait if a process
// the worker left behind still holds the pipe.
func (p *Process) exitError(ctx context.Context, err error) error {
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case <-p.done:
	case <-ctx.Done():
		return ctxError(ctx)
	case <-t.C:
		return err
	}
	drained := time.NewTimer(250 * time.Millisecond)
	defer drained.Stop()
	select {
	case <-p.output:
	case <-drained.C:
	case <-ctx.Done():
	}
	return ExitError(p.Cmd.ProcessState, p.Stderr.Tail(stderrTailSize))
}

// Done is closed once the worker process has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the worker process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Kill sends SIGKILL to the worker's process group, unless the worker has
// already exited (its group was killed then).
func (p *Process) Kill() {
	p.reapMu.Lock()
	defer p.reapMu.Unlock()
	if p.reaped {
		return
	}
	killGroup(p.Cmd.Process.Pid)
	p.Cmd.Process.Kill()
}

// Wait closes the protocol pipes or control socket (so a session worker or
// zygote sees EOF), waits for the worker to exit and returns its state.
// Stdout and Stderr are complete afterwards.
func (p *Process) Wait() (*os.ProcessState, error) {
	if p.Conn != nil {
		p.Conn.Close()
	}
	if p.Zygote != nil {
		p.Zygote.Close()
	}
	<-p.done
	p.stopCtx()
	// A process the worker left behind may still hold the output open; it
	// gets as long as exec's WaitDelay would give it.
	select {
	case <-p.output:
	case <-time.After(p.Cmd.WaitDelay):
		for _, f := range p.outR {
			f.Close()
		}
		<-p.output
	}
	var ee *exec.ExitError
	if errors.As(p.waitErr, &ee) {
		return p.Cmd.ProcessState, nil
	}
	return p.Cmd.ProcessState, p.waitErr
}

// WaitOutput waits until the worker's captured stdout and stderr are
// complete (every process holding them has closed them), without waiting
// for the worker to be reaped. A jail's exit tears down its namespaces
// before it can be reaped, which takes milliseconds the caller need not
// wait for.
func (p *Process) WaitOutput(ctx context.Context) error {
	select {
	case <-p.output:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SettleOutput waits until Stdout and Stderr hold everything the worker
// wrote to them before its last reply, or until ctx is done. A session
// worker's output never ends, so its end cannot tell when a call's output
// is complete; the harness flushes stdout and stderr before each reply in
// session mode, so what it wrote is in the pipes by then:
//   - captured directly, the pipes' copiers stop, what the pipes hold is
//     read without blocking, and the copiers go on;
//   - behind the relay, the harness asks the relay for a mark before
//     each reply, and the relay sends it after forwarding what its pipes
//     held (docs/PROTOCOL.md, "Relay"); the mark of the last reply read is
//     waited for.
//
// Output the worker writes later (a thread of the skill's, say) belongs
// to whichever call it reaches. Behind the relay it is for session
// workers only (others send no marks; their output ends). It returns nil
// once settled, ctx's error otherwise (only behind the relay: a direct
// pipe settles at once). Where pipes have no deadlines (Windows), it does
// nothing for direct pipes.
func (p *Process) SettleOutput(ctx context.Context) error {
	if p.relay && p.Conn != nil {
		// One mark precedes each session reply, ready included.
		want := p.Conn.Replies()
		for {
			p.markMu.Lock()
			if p.marks >= want {
				p.markMu.Unlock()
				return nil
			}
			marked := p.marked
			p.markMu.Unlock()
			select {
			case <-marked:
			case <-p.output:
				return nil // ended: all of it is there
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	for _, o := range p.pipes {
		o.settle()
	}
	return nil
}

// mark counts one of the relay's output marks.
func (p *Process) mark() {
	p.markMu.Lock()
	p.marks++
	close(p.marked)
	p.marked = make(chan struct{})
	p.markMu.Unlock()
}

// Close kills the worker and waits for it.
func (p *Process) Close() error {
	p.Kill()
	_, err := p.Wait()
	return err
}
