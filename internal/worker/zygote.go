//go:build linux

package worker

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"golang.org/x/sys/unix"
)

// maxControlFrame caps frames on the zygote control socket (ready with its
// package map and a load traceback is the largest).
const maxControlFrame = 1 << 20

// ZygotePair makes the control socketpair for a zygote: host is for
// NewZygote, child goes to exec.Cmd.ExtraFiles[0] (the harness's fd 3; a
// zygote has no fd 4). Close child once the zygote started.
func ZygotePair() (host, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, os.NewSyscallError("socketpair", err)
	}
	return os.NewFile(uintptr(fds[0]), "zygote-ctrl"), os.NewFile(uintptr(fds[1]), "zygote-ctrl-child"), nil
}

// Zygote drives a harness started in zygote mode (docs/PROTOCOL.md) over
// its control socket: Init once, then Fork one child per call. One goroutine
// reads the socket and routes forked/exited messages by id, so pre-forked
// children and late exits are fine. Fork and Init may be called from several
// goroutines; ids must be unique and positive.
type Zygote struct {
	conn *net.UnixConn
	wmu  sync.Mutex

	mu       sync.Mutex
	children map[uint64]*ZygoteChild
	readyCh  chan *Reply
	gotReady bool
	err      error
	dead     chan struct{}
}

// NewZygote takes over ctrl (the host end of the control socket; it is
// closed, a duplicate is kept) and starts reading it.
func NewZygote(ctrl *os.File) (*Zygote, error) {
	c, err := net.FileConn(ctrl)
	ctrl.Close()
	if err != nil {
		return nil, err
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, errors.New("worker: zygote control is not a unix socket")
	}
	z := &Zygote{conn: uc, children: map[uint64]*ZygoteChild{}, readyCh: make(chan *Reply, 1), dead: make(chan struct{})}
	go z.readLoop()
	return z, nil
}

// Done is closed when the control socket failed or was closed; Err then says why.
func (z *Zygote) Done() <-chan struct{} { return z.dead }

// Err is the reason the zygote is unusable, or nil.
func (z *Zygote) Err() error {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.err
}

// Close closes the control socket: the zygote kills its children and exits.
func (z *Zygote) Close() error {
	err := z.conn.Close()
	<-z.dead
	return err
}

func (z *Zygote) readLoop() {
	var err error
	for {
		var payload []byte
		payload, err = ReadFrame(z.conn, maxControlFrame)
		if err != nil {
			err = ioError(context.Background(), err, false)
			break
		}
		var rep *Reply
		if rep, err = parseReply(payload, func(e error) error { return e }); err != nil {
			break
		}
		if err = z.dispatch(rep); err != nil {
			break
		}
	}
	z.mu.Lock()
	if z.err == nil {
		z.err = err
	}
	z.mu.Unlock()
	close(z.dead)
	z.conn.Close()
}

func (z *Zygote) dispatch(rep *Reply) error {
	z.mu.Lock()
	defer z.mu.Unlock()
	if !z.gotReady {
		if rep.Type != TypeReady && rep.Type != TypeError {
			return violation("zygote sent %q before ready", rep.Type)
		}
		z.gotReady = true
		z.readyCh <- rep
		return nil
	}
	if rep.Type == TypeError && rep.Error != nil && rep.Error.Kind == ErrorKindHarness {
		return harnessError(rep.Error)
	}
	c := z.children[rep.ID]
	switch rep.Type {
	case TypeForked:
		if c != nil && c.PID == 0 && rep.PID > 0 {
			c.PID = rep.PID
			close(c.forked)
		}
	case TypeExited:
		if c != nil {
			if c.PID == 0 {
				return violation("exited before forked for %d", rep.ID)
			}
			if rep.Code != nil {
				c.status.Code = *rep.Code
			}
			c.status.Signal = rep.Signal
			delete(z.children, rep.ID)
			close(c.exited)
		}
	case TypeError:
		if c != nil && c.PID == 0 {
			c.forkErr = &errdefs.SkillError{Type: "ForkFailed", Message: "zygote could not fork"}
			if rep.Error != nil {
				c.forkErr = &errdefs.SkillError{Type: "ForkFailed", Message: rep.Error.Type + ": " + rep.Error.Message}
			}
			delete(z.children, rep.ID)
			close(c.forked)
		}
	default:
		return violation("unexpected %q frame on the zygote control socket", rep.Type)
	}
	return nil
}

func (z *Zygote) send(ctx context.Context, v any, oob []byte) error {
	payload, err := json.Marshal(v)
	if err != nil {
		return err
	}
	buf := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(payload)), uint32(len(payload)))
	buf = append(buf, payload...)
	z.wmu.Lock()
	defer z.wmu.Unlock()
	dl, _ := ctx.Deadline()
	z.conn.SetWriteDeadline(dl)
	n, _, err := z.conn.WriteMsgUnix(buf, oob, nil)
	if err == nil && n < len(buf) {
		_, err = z.conn.Write(buf[n:])
	}
	return err
}

func (z *Zygote) deadErr() error {
	if err := z.Err(); err != nil {
		return err
	}
	return &errdefs.SkillError{Type: TypeWorkerExited, Message: "zygote control socket closed"}
}

// Init sends init (Mode is forced to zygote) and waits for ready. A load
// failure is a *LoadError, as with Conn.Init. Unless in.Warm, the zygote
// does not import the skill (its ready has no class): each child does, and
// says so in its own ready (ZygoteChild.Ready).
func (z *Zygote) Init(ctx context.Context, in Init) (*Reply, error) {
	in.Type, in.Mode = TypeInit, ModeZygote
	if err := z.send(ctx, in, nil); err != nil {
		return nil, ioError(ctx, err, false)
	}
	select {
	case rep := <-z.readyCh:
		return checkReady(rep, in.Warm, func(err error) error {
			z.mu.Lock()
			if z.err == nil {
				z.err = err
			}
			z.mu.Unlock()
			return err
		})
	case <-z.dead:
		return nil, z.deadErr()
	case <-ctx.Done():
		return nil, ctxError(ctx)
	}
}

// ZygoteChild is one forked call worker. Use Call once, then Wait (or
// Close to abandon it).
type ZygoteChild struct {
	ID  uint64
	PID int // set once forked
	// Conn speaks to the child over its own protocol pipes.
	Conn *Conn
	// Stdout and Stderr capture the child's fds 1 and 2.
	Stdout, Stderr *Capture

	z       *Zygote
	forked  chan struct{}
	exited  chan struct{}
	status  ExitStatus
	forkErr error
	// The child's ready answer, once read (Ready).
	ready     *Reply
	readyErr  error
	readyDone bool
	stdio     sync.WaitGroup
	readers   []*os.File
}

// Fork asks the zygote for a child that will serve call id, with its own
// protocol pipes and stdout/stderr captured in stdioCap bytes each. It
// returns once the zygote answered forked. The child then waits for its call
// frame, so forking ahead of the call ("pre-fork") is fine.
func (z *Zygote) Fork(ctx context.Context, id uint64, stdioCap int64) (*ZygoteChild, error) {
	if id == 0 {
		return nil, errdefs.New(errdefs.Internal, "worker: fork id must be positive")
	}
	select {
	case <-z.dead:
		return nil, z.deadErr()
	default:
	}
	var closers []*os.File
	closeAll := func() {
		for _, f := range closers {
			f.Close()
		}
	}
	childProto, w, r, err := Pipes()
	if err != nil {
		return nil, err
	}
	closers = append(closers, w, r)
	so, co, err := newPipe(true)
	if err != nil {
		closeAll()
		childProto[0].Close()
		childProto[1].Close()
		return nil, err
	}
	se, ce, err := newPipe(true)
	if err != nil {
		closeAll()
		childProto[0].Close()
		childProto[1].Close()
		so.Close()
		co.Close()
		return nil, err
	}
	childEnds := []*os.File{childProto[0], childProto[1], co, ce}
	c := &ZygoteChild{ID: id, Stdout: NewCapture(stdioCap), Stderr: NewCapture(stdioCap), z: z,
		forked: make(chan struct{}), exited: make(chan struct{}), readers: []*os.File{so, se}}
	z.mu.Lock()
	if _, dup := z.children[id]; dup {
		z.mu.Unlock()
		closeAll()
		for _, f := range append(childEnds, so, se) {
			f.Close()
		}
		return nil, fmt.Errorf("worker: fork id %d already in use", id)
	}
	z.children[id] = c
	z.mu.Unlock()

	oob := unix.UnixRights(int(childEnds[0].Fd()), int(childEnds[1].Fd()), int(childEnds[2].Fd()), int(childEnds[3].Fd()))
	err = z.send(ctx, Fork{Type: TypeFork, ID: id}, oob)
	for _, f := range childEnds {
		f.Close() // the zygote has its own references now
	}
	c.Conn = NewConn(w, r, 0)
	for i, f := range c.readers {
		dst := c.Stdout
		if i == 1 {
			dst = c.Stderr
		}
		c.stdio.Add(1)
		go func() {
			defer c.stdio.Done()
			io.Copy(dst, f)
			f.Close() // not left to the garbage collector
		}()
	}
	if err != nil {
		c.forget()
		c.Close()
		return nil, ioError(ctx, err, false)
	}
	select {
	case <-c.forked:
		if c.forkErr != nil {
			c.Close()
			return nil, c.forkErr
		}
		return c, nil
	case <-z.dead:
		c.Close()
		return nil, z.deadErr()
	case <-ctx.Done():
		c.Close() // if it forks after all, the child sees EOF and exits
		return nil, ctxError(ctx)
	}
}

func (c *ZygoteChild) forget() {
	c.z.mu.Lock()
	if c.z.children[c.ID] == c {
		delete(c.z.children, c.ID)
	}
	c.z.mu.Unlock()
}

// Ready waits for the child's ready reply: the skill imported in the
// child (or, in a warm zygote, already in the zygote). A skill that fails to
// import is a *LoadError; a child that dies first is WorkerExited. The
// reply is read once; later calls return the first answer.
func (c *ZygoteChild) Ready(ctx context.Context) (*Reply, error) {
	if c.readyDone {
		return c.ready, c.readyErr
	}
	rep, err := c.Conn.Ready(ctx)
	if err != nil && errors.Is(err, ErrWorkerClosed) && !isLoadError(err) {
		st, werr := c.waitExited(ctx, 5*time.Second)
		switch {
		case werr == nil:
			err = exitStatusError(st, c.Stderr.Tail(stderrTailSize))
		case c.z.Err() != nil || isClosed(c.z.dead):
			err = fmt.Errorf("%w: %w", ErrZygoteGone, err)
		}
	}
	if err != nil && ctx.Err() != nil && !isLoadError(err) {
		return nil, err // not an answer: the caller's deadline ran out
	}
	c.ready, c.readyErr, c.readyDone = rep, err, true
	return rep, err
}

// ErrZygoteGone matches (with errors.Is) a child's failure to get ready
// because its zygote died: nothing of a call reached it yet.
var ErrZygoteGone = errors.New("worker: the zygote died before its child was ready")

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// ReadyReply is the child's ready reply once Ready returned one (nil
// before, or when the child answered with a load error: see PackagesOf).
func (c *ZygoteChild) ReadyReply() *Reply { return c.ready }

// Call runs the child's one call (see Conn.Call), after its ready (Ready)
// if that was not read yet. A child that dies before
// replying is reported as WorkerExited with its exit code or signal.
func (c *ZygoteChild) Call(ctx context.Context, params json.RawMessage, config map[string]string) (json.RawMessage, error) {
	if _, err := c.Ready(ctx); err != nil {
		return nil, err
	}
	res, err := c.Conn.Call(ctx, c.ID, params, config)
	if err != nil && errors.Is(err, ErrWorkerClosed) {
		st, werr := c.waitExited(ctx, 5*time.Second)
		if werr != nil {
			return nil, err
		}
		return nil, exitStatusError(st, c.Stderr.Tail(stderrTailSize))
	}
	return res, err
}

func (c *ZygoteChild) waitExited(ctx context.Context, max time.Duration) (ExitStatus, error) {
	t := time.NewTimer(max)
	defer t.Stop()
	select {
	case <-c.exited:
		return c.status, nil
	case <-c.z.dead:
		// One reader handles the zygote's messages in order and closes
		// dead last: once dead is closed, an exited message the zygote
		// sent before it ended (a retired zygote) has been handled.
		if isClosed(c.exited) {
			return c.status, nil
		}
		return ExitStatus{}, c.z.deadErr()
	case <-ctx.Done():
		return ExitStatus{}, ctxError(ctx)
	case <-t.C:
		return ExitStatus{}, errors.New("worker: timed out waiting for the zygote's exited message")
	}
}

// Wait waits for the zygote's exited message for this child (sent after the
// zygote's cleanup), then for its stdout/stderr to drain, and returns how the
// child ended. It closes the child's pipes.
func (c *ZygoteChild) Wait(ctx context.Context) (ExitStatus, error) {
	select {
	case <-c.exited:
	case <-c.z.dead:
		if !isClosed(c.exited) { // as in waitExited
			c.Close()
			return ExitStatus{}, c.z.deadErr()
		}
	case <-ctx.Done():
		return ExitStatus{}, ctxError(ctx)
	}
	c.Conn.Close()
	drained := make(chan struct{})
	go func() { c.stdio.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(200 * time.Millisecond): // a leftover process holds stdout
		c.Close()
		<-drained
	}
	return c.status, nil
}

// WaitOutput waits until the child's stdout and stderr are complete (every
// process holding them closed them), without waiting for the zygote's
// exited message. A harness child ends its output before it replies.
func (c *ZygoteChild) WaitOutput(ctx context.Context) error {
	drained := make(chan struct{})
	go func() { c.stdio.Wait(); close(drained) }()
	select {
	case <-drained:
		return nil
	case <-ctx.Done():
		return ctxError(ctx)
	}
}

// Close closes the host ends of the child's pipes. A child still waiting for
// its call sees EOF and exits; its exited message is still consumed.
func (c *ZygoteChild) Close() {
	if c.Conn != nil {
		c.Conn.Close()
	}
	for _, f := range c.readers {
		f.Close()
	}
}
