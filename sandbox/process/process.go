// Package process is the backend that isolates nothing: each call runs the
// harness in a plain subprocess with a scrubbed environment, a private
// scratch folder as its working directory and home, and a wall-clock timeout
// that kills its process group.
//
// It exists for developing trusted skills on hosts without an isolating
// backend. The skill can read every file the user can, reach the network and
// leave processes behind that escape its group. `auto` never chooses it, and
// every result it produces carries a warning saying so.
package process

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/backend"
	"github.com/skillbox-dev/skillbox/internal/pyinterp"
	"github.com/skillbox-dev/skillbox/internal/worker"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// Name is the backend's registered name.
const Name = "process"

// Driver is the process backend.
type Driver struct{}

// Name returns "process".
func (Driver) Name() string { return Name }

// enforces is what a plain subprocess can guarantee.
var enforces = []sandbox.Feature{sandbox.FeatureTimeout, sandbox.FeatureOutputCap, sandbox.FeatureEnvScrub}

// Probe reports whether a Python interpreter is available.
func (Driver) Probe(ctx context.Context) sandbox.Capabilities {
	c := sandbox.Capabilities{Isolating: false, Enforces: enforces}
	in, err := pyinterp.Resolve(ctx, "")
	if err != nil {
		c.Reason = err.Error()
		c.Layers = []sandbox.Layer{{Name: "python", Detail: err.Error()}}
		return c
	}
	c.Available = true
	c.Layers = []sandbox.Layer{{Name: "python", Available: true, Detail: in.String()}}
	return c
}

// Open checks spec against what a subprocess can enforce and resolves the
// interpreter. A session-mode spec starts its worker on the first call.
func (d Driver) Open(ctx context.Context, spec sandbox.Spec) (sandbox.Sandbox, error) {
	if err := backend.NoContainer(Name, spec); err != nil {
		return nil, err
	}
	if err := backend.CheckRequire(sandbox.Capabilities{Enforces: enforces}, Name, spec.Require); err != nil {
		return nil, err
	}
	if len(spec.Network) > 0 {
		return nil, errdefs.New(errdefs.Unsupported, "backend process cannot limit network access to %v", spec.Network)
	}
	// spec.ReadPaths needs nothing here: a plain subprocess already reads
	// every host file the user can (which is why it isolates nothing).
	in, err := pyinterp.Resolve(ctx, spec.Python)
	if err != nil {
		return nil, err
	}
	names, err := backend.RequirementNames(spec.Requirements)
	if err != nil {
		return nil, err
	}
	return &box{spec: spec, limits: spec.Limits.WithDefaults(), python: in, reqNames: names}, nil
}

// box runs the calls of one Spec.
type box struct {
	spec     sandbox.Spec
	limits   sandbox.Limits
	python   *pyinterp.Interpreter
	reqNames []string

	mu      sync.Mutex // session mode: one call at a time on one worker
	session *running
	nextID  atomic.Uint64
	closed  atomic.Bool
}

// running is a started worker and its scratch folder.
type running struct {
	proc    *worker.Process
	scratch string
}

func (b *box) Call(ctx context.Context, req sandbox.Request) (*sandbox.Result, error) {
	if b.closed.Load() {
		return nil, errdefs.New(errdefs.Unavailable, "sandbox is closed")
	}
	if b.spec.Mode == sandbox.ModeSession {
		return b.callSession(ctx, req)
	}
	// Starting Python and importing the skill has its own bound (as on
	// every backend); the timeout is the skill's call.
	sctx, scancel := context.WithTimeout(ctx, b.limits.Timeout+backend.StartAllowance)
	defer scancel()
	r, err := b.start(sctx, sctx, worker.ModeSingle)
	if err != nil {
		return nil, b.startErr(ctx, sctx, err)
	}
	defer os.RemoveAll(r.scratch)
	ctx, cancel := context.WithTimeout(ctx, b.limits.Timeout)
	defer cancel()
	value, err := r.proc.Call(ctx, b.nextID.Add(1), req.Params, req.Config)
	if err != nil {
		r.proc.Close() // which waits for the rest of its output
		return backend.NewResult(nil, r.proc.Stdout, r.proc.Stderr), backend.TimeoutError(ctx, b.limits, b.spec.SkillID, err)
	}
	state, _ := r.proc.Wait()
	return result(value, r.proc, state), nil
}

func (b *box) callSession(ctx context.Context, req sandbox.Request) (*sandbox.Result, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.session == nil {
		// The session worker outlives this call's context; its start is
		// bounded by a context of its own.
		sctx, scancel := context.WithTimeout(ctx, b.limits.Timeout+backend.StartAllowance)
		r, err := b.start(context.WithoutCancel(ctx), sctx, worker.ModeSession)
		scancel()
		if err != nil {
			return nil, b.startErr(ctx, sctx, err)
		}
		// What the import printed goes with the start, not the first call.
		backend.SettleOutput(ctx, r.proc.SettleOutput)
		b.session = r
	}
	ctx, cancel := context.WithTimeout(ctx, b.limits.Timeout)
	defer cancel()
	r := b.session
	r.proc.Stdout.Reset()
	r.proc.Stderr.Reset()
	value, err := r.proc.Call(ctx, b.nextID.Add(1), req.Params, req.Config)
	if err != nil {
		// A failed session call leaves the worker in an unknown state.
		b.stopSession()
		return backend.NewResult(nil, r.proc.Stdout, r.proc.Stderr), backend.TimeoutError(ctx, b.limits, b.spec.SkillID, err)
	}
	backend.SettleOutput(ctx, r.proc.SettleOutput)
	return result(value, r.proc, nil), nil
}

// start launches a worker in a fresh scratch folder and loads the skill
// before ready is done; the worker is killed when life is.
func (b *box) start(life, ready context.Context, mode string) (*running, error) {
	scratch, err := os.MkdirTemp("", "skillbox-scratch-*")
	if err != nil {
		return nil, errdefs.Wrap(errdefs.Internal, err, "scratch folder")
	}
	argv, code := worker.HarnessCommand(life, b.python.Command, b.python.Executable)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = scratch
	cmd.Env = worker.WithMallocTunables(worker.Environ(scratch, b.spec.Env))
	if code != nil {
		cmd.ExtraFiles = []*os.File{code} // worker.CodeFD
	}
	dieWithHost(cmd)
	proc, err := worker.Start(life, cmd, b.limits.Stdio)
	if code != nil {
		code.Close()
	}
	if err != nil {
		os.RemoveAll(scratch)
		return nil, errdefs.Wrap(errdefs.Internal, err, "start worker")
	}
	proc.Conn.SetMaxResult(int(b.limits.Output))
	rep, err := proc.Init(ready, worker.Init{
		Type:         worker.TypeInit,
		Bundle:       b.spec.BundleDir,
		Manifest:     b.spec.Manifest,
		Mode:         mode,
		Requirements: b.reqNames,
	})
	if pk, ok := worker.PackagesOf(rep, err); ok {
		// An unmet requirement explains an import error better than the
		// import error does.
		if rerr := backend.CheckRequirements(b.spec.Requirements, pk, b.python.String(), backend.HostPythonHint(b.spec.Ref())); rerr != nil {
			err = rerr
		}
	}
	if err != nil {
		proc.Close() // which waits for the rest of its output
		os.RemoveAll(scratch)
		return nil, errdefs.WithOutput(err, proc.Stdout.Bytes(), proc.Stderr.Bytes())
	}
	return &running{proc: proc, scratch: scratch}, nil
}

func result(value []byte, p *worker.Process, state *os.ProcessState) *sandbox.Result {
	r := backend.NewResult(value, p.Stdout, p.Stderr)
	if state != nil {
		r.Usage.MaxRSS, r.Usage.CPUTime = worker.Usage(state)
	}
	return r
}

func (b *box) stopSession() {
	if b.session != nil {
		b.session.proc.Close()
		os.RemoveAll(b.session.scratch)
		b.session = nil
	}
}

// Close stops the session worker, if any.
func (b *box) Close() error {
	b.closed.Store(true)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stopSession()
	return nil
}

// startErr is the error of a start that failed: a timeout naming the start
// when its own bound ran out, the call's when the caller's deadline did,
// else err.
func (b *box) startErr(ctx, sctx context.Context, err error) error {
	if ctx.Err() == nil && errors.Is(sctx.Err(), context.DeadlineExceeded) {
		return errdefs.WithOutputOf(errdefs.New(errdefs.Timeout, "call to %s: Python did not load the skill within %v (the %v timeout + %v to start); the skill was not called",
			b.spec.SkillID, b.limits.Timeout+backend.StartAllowance, b.limits.Timeout, backend.StartAllowance), err)
	}
	return backend.TimeoutError(ctx, b.limits, b.spec.SkillID, err)
}
