package linux

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/worker"
	"golang.org/x/sys/unix"
)

// zygote is a jail whose pid 1 is the harness in zygote mode: the skill is
// imported once, and every call runs in a fresh fork of it (PROTOCOL.md,
// "Zygote mode"). One call at a time.
type zygote struct {
	b    *box
	j    *jail
	ctrl *net.UnixConn
	log  *worker.Capture // the zygote's own stdout/stderr

	mu       sync.Mutex // held for a call or a pre-fork
	nextID   uint64
	pre      *forked // a child waiting for its call
	broken   bool    // the zygote must not be used again
	lastUsed time.Time
	lastExit string // how the last child ended, for WorkerExited
}

// forked is a child the zygote forked, with the host ends of its pipes.
type forked struct {
	id   uint64
	pid  int
	reqW *os.File
	repR *os.File
	outR *os.File
	errR *os.File
}

func (f *forked) close() {
	for _, x := range []*os.File{f.reqW, f.repR, f.outR, f.errR} {
		if x != nil {
			x.Close()
		}
	}
}

// startZygote starts a jail with the harness in zygote mode and waits for
// ready (the skill imported).
func (b *box) startZygote(ctx context.Context) (*zygote, error) {
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, errdefs.Wrap(errdefs.Internal, err, "socketpair")
	}
	host, inJail := os.NewFile(uintptr(sp[0]), "zygote-ctrl"), os.NewFile(uintptr(sp[1]), "zygote-ctrl")
	logR, logW, err := os.Pipe()
	if err != nil {
		host.Close()
		inJail.Close()
		return nil, errdefs.Wrap(errdefs.Internal, err, "pipe")
	}
	cfg := b.base
	cfg.Argv = b.argv()
	j, err := b.startJail(launch{cfg: cfg, fd3: inJail, stdout: logW, stderr: logW, limits: b.cgLimits()})
	inJail.Close()
	logW.Close()
	if err != nil {
		host.Close()
		logR.Close()
		return nil, errdefs.Wrap(errdefs.Internal, err, "start zygote jail")
	}
	log, _ := capture(logR, 16<<10)
	fc, err := net.FileConn(host)
	host.Close()
	if err != nil {
		j.destroy()
		return nil, errdefs.Wrap(errdefs.Internal, err, "control socket")
	}
	z := &zygote{b: b, j: j, ctrl: fc.(*net.UnixConn), log: log, lastUsed: time.Now()}
	ictx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := worker.WriteFrame(z.ctrl, b.initFrame(worker.ModeZygote)); err != nil {
		z.destroy()
		return nil, loadError(nil, err, log)
	}
	rep, err := readReply(ictx, z.ctrl, 1<<20)
	if err := loadError(rep, err, log); err != nil {
		z.destroy()
		return nil, err
	}
	return z, nil
}

// fork asks the zygote for a child, handing it the call's descriptors.
func (z *zygote) fork(ctx context.Context) (*forked, error) {
	p, err := newPipes()
	if err != nil {
		return nil, err
	}
	z.nextID++
	id := z.nextID
	payload, _ := json.Marshal(worker.Fork{Type: worker.TypeFork, ID: id})
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(payload)))
	rights := unix.UnixRights(int(p.reqR.Fd()), int(p.repW.Fd()), int(p.outW.Fd()), int(p.errW.Fd()))
	_, _, err = z.ctrl.WriteMsgUnix(append(frame, payload...), rights, nil)
	p.closeJailEnds()
	f := &forked{id: id, reqW: p.reqW, repR: p.repR, outR: p.outR, errR: p.errR}
	if err != nil {
		f.close()
		return nil, fmt.Errorf("send fork: %w", err)
	}
	rep, err := readReply(ctx, z.ctrl, 1<<20)
	if err != nil {
		f.close()
		return nil, fmt.Errorf("fork reply: %w", err)
	}
	if rep.Type != worker.TypeForked || rep.ID != id {
		f.close()
		if rep.Error != nil {
			return nil, fmt.Errorf("zygote could not fork: %s: %s", rep.Error.Type, rep.Error.Message)
		}
		return nil, fmt.Errorf("protocol violation: expected forked %d, got %q %d", id, rep.Type, rep.ID)
	}
	f.pid = rep.PID
	return f, nil
}

// prefork forks the next child while the zygote is idle, so a call finds
// one waiting.
func (z *zygote) prefork() {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.broken || z.pre != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f, err := z.fork(ctx)
	if err != nil {
		z.broken = true
		return
	}
	z.pre = f
}

// call runs req in a fresh child of the zygote.
func (z *zygote) call(ctx context.Context, req sandbox.Request) (*sandbox.Result, error) {
	z.mu.Lock()
	defer z.mu.Unlock()
	defer func() { z.lastUsed = time.Now() }()
	b := z.b
	before := snapshot(z.j.cg)
	f := z.pre
	z.pre = nil
	if f == nil {
		var err error
		if f, err = z.fork(ctx); err != nil {
			z.broken = true
			if ctx.Err() != nil {
				return nil, b.timeoutErr(ctx)
			}
			if lerr := b.limitHit(z.j.cg, before); lerr != nil {
				return nil, lerr
			}
			return nil, errdefs.Wrap(errdefs.Internal, err, "zygote")
		}
	}
	defer f.close()
	stdout, outDone := capture(f.outR, b.lim.Stdio)
	stderr, errDone := capture(f.errR, b.lim.Stdio)
	f.outR, f.errR = nil, nil
	go func(w *os.File) {
		worker.WriteFrame(w, callFrame(f.id, req))
		w.Close()
	}(f.reqW)
	f.reqW = nil
	rep, rerr := readReply(ctx, f.repR, b.maxFrame())
	if rerr != nil && ctx.Err() != nil {
		// Past the deadline: the child may spin forever. Killing pid 1
		// kills the whole jail; the pool replaces the zygote.
		z.broken = true
		z.j.kill()
	} else if rerr != nil && !isEOF(rerr) {
		z.broken = true // a frame we refused: the child may still be writing
		z.j.kill()
	}
	if rep != nil && rep.ID != f.id {
		rep, rerr = nil, fmt.Errorf("reply for call %d, expected %d", rep.ID, f.id)
		z.broken = true
		z.j.kill()
	}
	exited := z.waitExited(ctx, f.id)
	if !exited {
		z.broken = true
		z.j.kill()
	}
	<-outDone
	<-errDone
	return b.finish(ctx, rep, rerr, stdout, stderr, z.j.cg, before, func() string {
		return fmt.Sprintf("worker exited (%s)", z.lastExit)
	})
}

func isEOF(err error) bool { return err == io.EOF || err == io.ErrUnexpectedEOF }

// waitExited reads control frames until the zygote reports child id reaped
// (it has then killed every other process of the call and emptied the
// scratch). It reports false if the zygote is gone or too slow.
func (z *zygote) waitExited(ctx context.Context, id uint64) bool {
	// The child exits right after replying; allow cleanup some slack even
	// when the call's own deadline has passed.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) > 5*time.Second {
		wctx, cancel = context.WithDeadline(context.WithoutCancel(ctx), dl)
		defer cancel()
	}
	for {
		rep, err := readReply(wctx, z.ctrl, 1<<20)
		if err != nil {
			z.lastExit = "zygote gone: " + err.Error()
			return false
		}
		if rep.Type == worker.TypeExited && rep.ID == id {
			switch {
			case rep.Signal != 0:
				z.lastExit = fmt.Sprintf("signal %d", rep.Signal)
			case rep.Code != nil:
				z.lastExit = fmt.Sprintf("exit code %d", *rep.Code)
			}
			return true
		}
	}
}

// usable reports whether the zygote can take another call.
func (z *zygote) usable() bool {
	z.mu.Lock()
	defer z.mu.Unlock()
	return !z.broken && z.j.alive()
}

// destroy kills the zygote's jail and releases everything it holds.
func (z *zygote) destroy() {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.broken = true
	if z.pre != nil {
		z.pre.close()
		z.pre = nil
	}
	z.ctrl.Close()
	z.j.destroy()
}

// lastUsedAt returns when the zygote last finished a call.
func (z *zygote) lastUsedAt() time.Time {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.lastUsed
}
