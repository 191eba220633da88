package linux

import (
	"context"
	"sync"

	"github.com/skillbox-dev/skillbox/internal/backend"
	"github.com/skillbox-dev/skillbox/internal/cgroup"
	"github.com/skillbox-dev/skillbox/internal/worker"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// session runs every call of the Sandbox in one session-mode worker (module
// state persists, by request). Calls are serialized. A worker that dies,
// times out or breaks the protocol is replaced at the next call, with fresh
// state; a skill exception keeps it.
type session struct {
	b  *box
	mu sync.Mutex
	j  *jailProc
	id uint64
}

func (s *session) start(ctx context.Context) error {
	b := s.b
	// The worker outlives this call's context.
	j, err := b.startJail(context.WithoutCancel(ctx), false, true, b.lim.Stdio)
	if err != nil {
		return err
	}
	j.Conn.SetMaxResult(int(b.lim.Output))
	if err := b.initWorker(ctx, j.Process, b.initMsg(worker.ModeSession)); err != nil {
		err = j.loadFailed(ctx, b.startLimit(j.cg, err))
		j.destroy()
		return err
	}
	// What the import printed goes with the start, not the first call.
	backend.SettleOutput(ctx, j.SettleOutput)
	s.j = j
	return nil
}

func (s *session) call(ctx context.Context, req sandbox.Request) (*sandbox.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.b
	if s.j != nil && s.j.Exited() {
		s.stop()
	}
	if s.j == nil {
		sctx, scancel := b.startContext(ctx)
		err := s.start(sctx)
		scancel()
		if err != nil {
			return nil, b.startErr(ctx, sctx, err)
		}
	}
	ctx, cancel := b.callContext(ctx)
	defer cancel()
	j := s.j
	j.run.BeginCall(ctx)
	defer j.run.EndCall()
	j.Stdout.Reset()
	j.Stderr.Reset()
	s.id++
	before := cgroup.Snapshot(j.cg)
	// The session's process outlives its calls: each call's MaxRSS is the
	// jail's peak from its start.
	peak := cgroup.StartPeak(j.cg)
	defer peak.Close()
	value, err := j.Call(ctx, s.id, req.Params, req.Config)
	if err != nil {
		// Judged before the jail (and its cgroup counters) may go.
		err = b.judge.CallError(ctx, err, j.cg, before)
		if j.Conn.Broken() {
			s.stop() // dead, too slow or out of step: start over next time
		} else {
			backend.SettleOutput(ctx, j.SettleOutput)
		}
		// What it printed: the session's process lives on, so its output
		// never ends (as for a result).
		return backend.NewResult(nil, j.Stdout, j.Stderr), err
	}
	backend.SettleOutput(ctx, j.SettleOutput)
	return result(value, j.Stdout, j.Stderr, peak.Read()), nil
}

func (s *session) stop() {
	if s.j != nil {
		s.j.destroy()
		s.j = nil
	}
}

func (s *session) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stop()
}
