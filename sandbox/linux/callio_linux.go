package linux

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/cgroup"
	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/worker"
)

// deadliner is a descriptor whose reads can be bounded (pipes, sockets).
type deadliner interface {
	io.Reader
	SetReadDeadline(time.Time) error
}

// readReply reads one frame from r, bounded by ctx. A frame larger than
// max is an output limit error (the skill's result is too big).
func readReply(ctx context.Context, r deadliner, max int) (*worker.Reply, error) {
	if dl, ok := ctx.Deadline(); ok {
		r.SetReadDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { r.SetReadDeadline(time.Now()) })
	defer stop()
	b, err := worker.ReadFrame(r, max)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	var rep worker.Reply
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("protocol violation: %w", err)
	}
	return &rep, nil
}

// callFrame is the call message for req.
func callFrame(id uint64, req sandbox.Request) worker.Call {
	params := req.Params
	if len(params) == 0 {
		params = json.RawMessage("{}")
	}
	return worker.Call{Type: worker.TypeCall, ID: id, Params: params, Config: req.Config}
}

// capture drains r into a capped Capture; done closes at EOF.
func capture(r *os.File, max int64) (*worker.Capture, <-chan struct{}) {
	c := worker.NewCapture(max)
	done := make(chan struct{})
	go func() {
		io.Copy(c, r)
		r.Close()
		close(done)
	}()
	return c, done
}

// counters snapshots a jail cgroup's limit counters.
type counters struct{ oom, pids int64 }

func snapshot(cg *cgroup.Group) counters {
	if cg == nil {
		return counters{}
	}
	o, p := cg.Counters()
	return counters{o, p}
}

// limitHit names the limit a failed call ran into, judged by the cgroup
// counters before and after it, or returns nil.
func (b *box) limitHit(cg *cgroup.Group, before counters) error {
	after := snapshot(cg)
	if after.oom > before.oom {
		return &errdefs.LimitError{Resource: "memory", Limit: fmt.Sprintf("%dMiB", b.lim.Memory>>20),
			Detail: "the kernel OOM killer stopped the skill"}
	}
	if after.pids > before.pids {
		return &errdefs.LimitError{Resource: "pids", Limit: fmt.Sprint(b.lim.Pids),
			Detail: "process creation was refused"}
	}
	return nil
}

// timeoutErr is the error for a call past its deadline (or cancelled).
func (b *box) timeoutErr(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return errdefs.New(errdefs.Timeout, "call to %s timed out after %v; its processes were killed", b.spec.SkillID, b.lim.Timeout)
	}
	return ctx.Err()
}

// finish turns the worker's reply (or its absence) into a Result or error.
// died describes how the worker ended when there was no reply.
func (b *box) finish(ctx context.Context, rep *worker.Reply, rerr error, stdout, stderr *worker.Capture,
	cg *cgroup.Group, before counters, died func() string) (*sandbox.Result, error) {
	res := &sandbox.Result{
		Stdout: stdout.Bytes(), Stderr: stderr.Bytes(),
		StdoutTruncated: stdout.Truncated(), StderrTruncated: stderr.Truncated(),
	}
	if cg != nil {
		res.Usage.MaxRSS = cg.PeakMemory()
	}
	switch {
	case rerr != nil && ctx.Err() != nil:
		return nil, b.timeoutErr(ctx)
	case errors.Is(rerr, worker.ErrFrameTooLarge):
		return nil, &errdefs.LimitError{Resource: "output", Limit: fmt.Sprintf("%d bytes", b.lim.Output), Detail: "result too large"}
	case rerr != nil:
		if err := b.limitHit(cg, before); err != nil {
			return nil, err
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			msg := died()
			if tail := stderr.Tail(2048); len(tail) > 0 {
				msg += "; stderr: " + string(tail)
			}
			return nil, &errdefs.SkillError{Type: "WorkerExited", Message: msg}
		}
		return nil, &errdefs.SkillError{Type: "ProtocolViolation", Message: "protocol violation: " + rerr.Error()}
	}
	switch rep.Type {
	case worker.TypeResult:
		if int64(len(rep.Result)) > b.lim.Output {
			return nil, &errdefs.LimitError{Resource: "output", Limit: fmt.Sprintf("%d bytes", b.lim.Output), Detail: "result too large"}
		}
		res.Value = rep.Result
		return res, nil
	case worker.TypeError:
		if err := b.limitHit(cg, before); err != nil {
			return nil, err
		}
		if rep.Error == nil {
			return nil, &errdefs.SkillError{Type: "ProtocolViolation", Message: "error frame without error"}
		}
		return nil, &errdefs.SkillError{Type: rep.Error.Type, Message: rep.Error.Message, Traceback: rep.Error.Traceback}
	}
	return nil, &errdefs.SkillError{Type: "ProtocolViolation", Message: fmt.Sprintf("protocol violation: unexpected %q frame", rep.Type)}
}

// loadError converts a reply to init into an error, or nil for ready.
func loadError(rep *worker.Reply, err error, log *worker.Capture) error {
	if err != nil {
		msg := "worker exited before it was ready: " + err.Error()
		if log != nil {
			if t := log.Tail(2048); len(t) > 0 {
				msg += "; stderr: " + string(t)
			}
		}
		return &errdefs.SkillError{Type: "WorkerExited", Message: msg}
	}
	if rep.Type == worker.TypeReady {
		return nil
	}
	if rep.Type == worker.TypeError && rep.Error != nil {
		return &errdefs.SkillError{Type: rep.Error.Type, Message: rep.Error.Message, Traceback: rep.Error.Traceback}
	}
	return &errdefs.SkillError{Type: "ProtocolViolation", Message: fmt.Sprintf("protocol violation: expected ready, got %q", rep.Type)}
}

// pipes holds the per-call descriptors: the host keeps one end of each.
type pipes struct {
	reqR, reqW, repR, repW, outR, outW, errR, errW *os.File
}

func newPipes() (*pipes, error) {
	var p pipes
	var err error
	ends := []*[2]**os.File{{&p.reqR, &p.reqW}, {&p.repR, &p.repW}, {&p.outR, &p.outW}, {&p.errR, &p.errW}}
	for _, e := range ends {
		if *e[0], *e[1], err = os.Pipe(); err != nil {
			p.closeAll()
			return nil, err
		}
	}
	return &p, nil
}

// closeJailEnds closes the ends that now live in the jail.
func (p *pipes) closeJailEnds() {
	for _, f := range []*os.File{p.reqR, p.repW, p.outW, p.errW} {
		if f != nil {
			f.Close()
		}
	}
}

func (p *pipes) closeAll() {
	for _, f := range []*os.File{p.reqR, p.reqW, p.repR, p.repW, p.outR, p.outW, p.errR, p.errW} {
		if f != nil {
			f.Close()
		}
	}
}
