package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"golang.org/x/sys/unix"
)

// newPipe returns a pipe whose read end (if hostReads) or write end is
// pollable (non-blocking, for deadlines) and whose other end is blocking,
// for the worker. Both are close-on-exec.
func newPipe(hostReads bool) (host, child *os.File, err error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, nil, os.NewSyscallError("pipe2", err)
	}
	hi, ci := p[1], p[0]
	if hostReads {
		hi, ci = p[0], p[1]
	}
	if err := unix.SetNonblock(hi, true); err != nil {
		unix.Close(p[0])
		unix.Close(p[1])
		return nil, nil, os.NewSyscallError("fcntl", err)
	}
	return os.NewFile(uintptr(hi), "|worker-host"), os.NewFile(uintptr(ci), "|worker-child"), nil
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
	if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return exitStatusError(ExitStatus{Signal: int(ws.Signal())}, stderrTail)
	}
	return exitStatusError(ExitStatus{Code: state.ExitCode()}, stderrTail)
}

// ExitStatus is how a worker (or zygote child) ended: Signal is non-zero when
// a signal killed it, otherwise Code is its exit code.
type ExitStatus struct {
	Code   int
	Signal int
}

func (s ExitStatus) String() string {
	if s.Signal != 0 {
		name := unix.SignalName(syscall.Signal(s.Signal))
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

// Process is a worker started as a plain subprocess (the process backend,
// tests): protocol pipes on fds 3 and 4, stdout and stderr captured.
type Process struct {
	Cmd            *exec.Cmd
	Conn           *Conn
	Stdout, Stderr *Capture

	done    chan struct{} // closed when Cmd.Wait returned
	waitErr error
	stopCtx func() bool
}

// Start starts cmd (typically exec.Command(Argv(python)...) with Env and Dir
// set) as a worker. cmd.ExtraFiles must be empty; nil Stdout/Stderr are
// captured into Captures of stdioCap bytes each. The worker gets its own
// process group; when ctx is done, the group is killed.
func Start(ctx context.Context, cmd *exec.Cmd, stdioCap int64) (*Process, error) {
	if len(cmd.ExtraFiles) != 0 {
		return nil, errors.New("worker: cmd.ExtraFiles must be empty")
	}
	child, w, r, err := Pipes()
	if err != nil {
		return nil, err
	}
	p := &Process{Cmd: cmd, Stdout: NewCapture(stdioCap), Stderr: NewCapture(stdioCap), done: make(chan struct{})}
	if cmd.Stdout == nil {
		cmd.Stdout = p.Stdout
	}
	if cmd.Stderr == nil {
		cmd.Stderr = p.Stderr
	}
	if cmd.WaitDelay == 0 {
		cmd.WaitDelay = time.Second
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.ExtraFiles = child
	err = cmd.Start()
	for _, f := range child {
		f.Close()
	}
	if err != nil {
		w.Close()
		r.Close()
		return nil, err
	}
	p.Conn = NewConn(w, r, 0)
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	p.stopCtx = context.AfterFunc(ctx, p.Kill)
	return p, nil
}

// Init sends init and returns the ready reply (see Conn.Init). A worker that
// dies during init is reported with ExitError.
func (p *Process) Init(ctx context.Context, in Init) (*Reply, error) {
	rep, err := p.Conn.Init(ctx, in)
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
func (p *Process) exitError(ctx context.Context, err error) error {
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case <-p.done:
		return ExitError(p.Cmd.ProcessState, p.Stderr.Tail(stderrTailSize))
	case <-ctx.Done():
		return ctxError(ctx)
	case <-t.C:
		return err
	}
}

// Kill sends SIGKILL to the worker's process group.
func (p *Process) Kill() {
	if pid := p.Cmd.Process.Pid; pid > 0 {
		syscall.Kill(-pid, syscall.SIGKILL)
	}
	p.Cmd.Process.Kill()
}

// Wait closes the protocol pipes (so a session worker sees EOF), waits for
// the worker to exit and returns its state. Stdout and Stderr are complete
// afterwards.
func (p *Process) Wait() (*os.ProcessState, error) {
	p.Conn.Close()
	<-p.done
	p.stopCtx()
	var ee *exec.ExitError
	if errors.As(p.waitErr, &ee) {
		return p.Cmd.ProcessState, nil
	}
	return p.Cmd.ProcessState, p.waitErr
}

// Close kills the worker and waits for it.
func (p *Process) Close() error {
	p.Kill()
	_, err := p.Wait()
	return err
}
