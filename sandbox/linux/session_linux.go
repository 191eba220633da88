package linux

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/cgroup"
	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/worker"
)

// session runs every call of the Sandbox in one session-mode worker (module
// state persists, by request). Calls are serialized. A worker that dies or
// times out is replaced at the next call, with fresh state.
type session struct {
	b  *box
	mu sync.Mutex
	w  *sessionWorker
	id uint64
}

type sessionWorker struct {
	j              *jail
	p              *pipes
	stdout, stderr *switchCapture
}

// switchCapture forwards a worker's stdio to the current call's Capture.
type switchCapture struct {
	mu  sync.Mutex
	cur *worker.Capture
}

func (s *switchCapture) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil {
		s.cur.Write(b)
	}
	return len(b), nil
}

func (s *switchCapture) set(c *worker.Capture) {
	s.mu.Lock()
	s.cur = c
	s.mu.Unlock()
}

func (s *session) start(ctx context.Context) error {
	b := s.b
	p, err := newPipes()
	if err != nil {
		return err
	}
	cfg := b.base
	cfg.Argv = b.argv()
	j, err := b.startJail(launch{cfg: cfg, fd3: p.reqR, fd4: p.repW, stdout: p.outW, stderr: p.errW, limits: b.cgLimits()})
	p.closeJailEnds()
	p.reqR, p.repW, p.outW, p.errW = nil, nil, nil, nil
	if err != nil {
		p.closeAll()
		return errdefs.Wrap(errdefs.Internal, err, "start jail")
	}
	w := &sessionWorker{j: j, p: p, stdout: &switchCapture{}, stderr: &switchCapture{}}
	go copyTo(w.stdout, p.outR)
	go copyTo(w.stderr, p.errR)
	if err := worker.WriteFrame(p.reqW, b.initFrame(worker.ModeSession)); err != nil {
		w.stop()
		return loadError(nil, err, nil)
	}
	rep, err := readReply(ctx, p.repR, 1<<20)
	if err := loadError(rep, err, nil); err != nil {
		w.stop()
		return err
	}
	s.w = w
	return nil
}

func (w *sessionWorker) stop() {
	w.p.closeAll()
	w.j.destroy()
}

func (s *session) call(ctx context.Context, req sandbox.Request) (*sandbox.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.b
	if s.w != nil && !s.w.j.alive() {
		s.w.stop()
		s.w = nil
	}
	if s.w == nil {
		if err := s.start(ctx); err != nil {
			return nil, err
		}
	}
	w := s.w
	stdout, stderr := worker.NewCapture(b.lim.Stdio), worker.NewCapture(b.lim.Stdio)
	w.stdout.set(stdout)
	w.stderr.set(stderr)
	defer w.stdout.set(nil)
	defer w.stderr.set(nil)
	s.id++
	var cg *cgroup.Group = w.j.cg
	before := snapshot(cg)
	go worker.WriteFrame(w.p.reqW, callFrame(s.id, req))
	rep, rerr := readReply(ctx, w.p.repR, b.maxFrame())
	if rerr != nil || rep.ID != s.id {
		// Dead, too slow or out of step: start over next time.
		w.stop()
		s.w = nil
		if rerr == nil {
			rerr = fmt.Errorf("reply for call %d, expected %d", rep.ID, s.id)
		}
	}
	return b.finish(ctx, rep, rerr, stdout, stderr, cg, before, func() string {
		return fmt.Sprintf("worker exited (%v)", w.j.cmd.ProcessState)
	})
}

func (s *session) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w != nil {
		s.w.stop()
		s.w = nil
	}
}

// copyTo drains r into w until EOF, then closes r.
func copyTo(w io.Writer, r *os.File) {
	io.Copy(w, r)
	r.Close()
}
