package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/jsonscan"
)

// Envelope is the room a reply frame may take beyond its result.
const Envelope = 64 << 10

// Error types the host itself reports in errdefs.SkillError.Type.
const (
	TypeProtocolViolation = "ProtocolViolation" // junk, oversized, mismatched or unexpected frame
	TypeWorkerExited      = "WorkerExited"      // the worker died or closed its pipe before replying
	TypeHarnessError      = "HarnessError"      // the harness reported a failure of its own
)

// ErrWorkerClosed matches (with errors.Is) a Conn error caused by the worker
// closing its end of a protocol pipe: it has most likely exited. Callers that
// can wait for the process should report [ExitError] instead.
var ErrWorkerClosed = errors.New("worker closed the protocol pipe")

// ErrConnBroken matches (with errors.Is) the error of any use of a Conn after
// a failure that left the stream in an unknown state (timeout, violation,
// closed pipe). The worker must be killed.
var ErrConnBroken = errors.New("worker connection unusable after an earlier failure")

// Conn drives one worker over its request pipe (host writes, child fd 3)
// and reply pipe (host reads, child fd 4). Every read and write is bounded
// by the context; every frame is checked. Methods are not meant to be used
// concurrently (they serialise).
type Conn struct {
	w, r      *os.File
	maxFrame  int
	maxResult int

	mu      sync.Mutex
	broken  error
	replies uint64 // reply frames read
}

// NewConn returns a Conn writing requests to w and reading replies from r.
// maxFrame caps reply frames (<= 0: DefaultMaxFrame); results are capped at
// maxFrame-Envelope unless changed with SetMaxResult. w and r should be
// pollable (from os.Pipe or [Pipes]) so deadlines work.
func NewConn(w, r *os.File, maxFrame int) *Conn {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	c := &Conn{w: w, r: r}
	c.setCaps(maxFrame)
	return c
}

func (c *Conn) setCaps(maxFrame int) {
	c.maxFrame = maxFrame
	c.maxResult = maxFrame - Envelope
	if c.maxResult < maxFrame/2 {
		c.maxResult = maxFrame / 2
	}
}

// SetMaxResult caps the JSON result at n bytes (the call's output limit) and
// the reply frame at n+Envelope. A bigger result fails the call with
// *errdefs.LimitError{Resource: "output"}.
func (c *Conn) SetMaxResult(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.maxFrame = n + Envelope
	c.maxResult = n
}

// Close closes both pipe ends. The worker sees EOF on its fd 3.
func (c *Conn) Close() error {
	err1 := c.w.Close()
	err2 := c.r.Close()
	if err1 != nil && !errors.Is(err1, os.ErrClosed) {
		return err1
	}
	if err2 != nil && !errors.Is(err2, os.ErrClosed) {
		return err2
	}
	return nil
}

// Init sends the init frame (Type is filled in) and returns the ready reply.
// A load failure is a *LoadError; anything unexpected is a ProtocolViolation
// *errdefs.SkillError.
func (c *Conn) Init(ctx context.Context, in Init) (*Reply, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	in.Type = TypeInit
	rep, err := c.roundTrip(ctx, in, false)
	if err != nil {
		return nil, err
	}
	return checkReady(rep, true, func(err error) error { return c.fail(err) })
}

// Ready reads the ready reply (or load error) a worker sends without being
// asked: a zygote's call child, once it imported the skill. Like Init, a
// load failure is a *LoadError.
func (c *Conn) Ready(ctx context.Context) (*Reply, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rep, err := c.roundTrip(ctx, nil, false)
	if err != nil {
		return nil, err
	}
	return checkReady(rep, true, func(err error) error { return c.fail(err) })
}

// checkReady validates a reply to init. fail marks the transport broken.
// needClass is false only for a zygote that does not import the skill.
func checkReady(rep *Reply, needClass bool, fail func(error) error) (*Reply, error) {
	switch rep.Type {
	case TypeReady:
		if needClass && rep.Class == "" {
			return nil, fail(violation("ready frame without a class"))
		}
		return rep, nil
	case TypeExited:
		return nil, exitedError(rep)
	case TypeError:
		if rep.Error == nil {
			return nil, fail(violation("error frame without an error"))
		}
		if rep.Error.Kind == ErrorKindHarness {
			return nil, fail(harnessError(rep.Error))
		}
		if rep.Error.Kind != ErrorKindLoad {
			return nil, fail(violation("init answered with an error of kind %q", rep.Error.Kind))
		}
		// The worker exits after a load error.
		fail(ErrWorkerClosed)
		return nil, &LoadError{Type: rep.Error.Type, Message: rep.Error.Message, Traceback: rep.Error.Traceback, Packages: rep.Packages}
	default:
		return nil, fail(violation("expected a ready frame, got %q", rep.Type))
	}
}

// Call runs execute(params) with config as the skill's config and returns
// the JSON result. id must be positive and increase per worker; params nil
// means {}. A skill exception or non-JSON result is an *errdefs.SkillError
// (the Conn stays usable in session mode); a result over the cap is an
// *errdefs.LimitError; a timeout is kind Timeout; a dead worker matches
// ErrWorkerClosed.
func (c *Conn) Call(ctx context.Context, id uint64, params json.RawMessage, config map[string]string) (json.RawMessage, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if id == 0 {
		return nil, errdefs.New(errdefs.Internal, "worker: call id must be positive")
	}
	if len(params) == 0 {
		params = json.RawMessage("{}")
	}
	report := netAttemptsFrom(ctx)
	rep, err := c.roundTrip(ctx, Call{Type: TypeCall, ID: id, Params: params, Config: config, NetHint: report != nil}, true)
	if err != nil {
		return nil, err
	}
	if report != nil && len(rep.NetAttempts) > 0 && rep.ID == id {
		if a := ParseNetAttempts(rep.NetAttempts); len(a) > 0 {
			report(a)
		}
	}
	switch rep.Type {
	case TypeResult:
		if rep.ID != id {
			return nil, c.fail(violation("result for call %d, expected %d", rep.ID, id))
		}
		if rep.Result == nil {
			return nil, c.fail(violation("result frame without a result"))
		}
		if len(rep.Result) > c.maxResult {
			return nil, &errdefs.LimitError{Resource: "output", Limit: fmt.Sprintf("%d bytes", c.maxResult),
				Detail: fmt.Sprintf("result is %d bytes", len(rep.Result))}
		}
		// The harness writes UTF-8; a result that is not was forged, and
		// would reach clients as bytes their JSON decoders refuse.
		if !utf8.Valid(rep.Result) {
			return nil, c.fail(violation("result is not valid UTF-8"))
		}
		return rep.Result, nil
	case TypeExited:
		if rep.ID != id {
			return nil, c.fail(violation("exited frame for call %d, expected %d", rep.ID, id))
		}
		return nil, exitedError(rep)
	case TypeError:
		if rep.Error == nil {
			return nil, c.fail(violation("error frame without an error"))
		}
		if rep.Error.Kind == ErrorKindHarness && (rep.ID == 0 || rep.ID == id) {
			return nil, c.fail(harnessError(rep.Error))
		}
		if rep.ID != id {
			return nil, c.fail(violation("error for call %d, expected %d", rep.ID, id))
		}
		switch rep.Error.Kind {
		case ErrorKindException, ErrorKindResult:
			if rep.Error.Type == "" {
				return nil, c.fail(violation("error frame without a type"))
			}
			return nil, &errdefs.SkillError{Type: rep.Error.Type, Message: rep.Error.Message, Traceback: rep.Error.Traceback}
		default:
			return nil, c.fail(violation("call answered with an error of kind %q", rep.Error.Kind))
		}
	default:
		return nil, c.fail(violation("expected a result frame, got %q", rep.Type))
	}
}

// exitedError is the WorkerExited error of an "exited" reply: a host
// that runs each call in a worker of its own (the pyodide backend's Web
// Workers) reports that worker's end this way and stays usable. The
// traceback (stderr's tail) is the caller's to add.
func exitedError(rep *Reply) error {
	s := ExitStatus{Signal: rep.Signal}
	if rep.Code != nil {
		s.Code = *rep.Code
	}
	return &EndedError{Status: s, err: exitStatusError(s, nil)}
}

// EndedError is a WorkerExited error reported by a host that outlives the
// worker (an "exited" reply): the Conn stays usable. It unwraps to the
// *errdefs.SkillError a dead worker process gives.
type EndedError struct {
	Status ExitStatus
	err    error
}

func (e *EndedError) Error() string           { return e.err.Error() }
func (e *EndedError) Unwrap() error           { return e.err }
func (e *EndedError) ErrorKind() errdefs.Kind { return errdefs.Skill }

// roundTrip writes req and reads one reply, both bounded by ctx.
func (c *Conn) roundTrip(ctx context.Context, req any, inCall bool) (*Reply, error) {
	if c.broken != nil {
		return nil, &brokenError{c.broken}
	}
	if err := ctx.Err(); err != nil {
		return nil, ctxError(ctx)
	}
	stop := watchDeadline(ctx, c.w, c.r)
	defer stop()
	if req != nil {
		write := WriteFrame
		if call, ok := req.(Call); ok {
			write = func(w io.Writer, _ any) error { return WriteCall(w, call) }
			if len(call.Params) > bigParams {
				growPipe(c.w, len(call.Params)+Envelope)
			}
		}
		if err := write(c.w, req); err != nil {
			return nil, c.fail(ioError(ctx, err, inCall))
		}
	}
	payload, err := ReadFrame(c.r, c.maxFrame)
	if err != nil {
		return nil, c.fail(ioError(ctx, err, inCall))
	}
	c.replies++
	return parseReply(payload, func(err error) error { return c.fail(err) })
}

// bigReply is the size of reply frame above which parseReply takes the
// result out before decoding the rest.
const bigReply = 64 << 10

func parseReply(payload []byte, fail func(error) error) (*Reply, error) {
	var rep Reply
	if len(payload) > bigReply {
		if r, ok := parseBigReply(payload); ok {
			rep = *r
			if rep.Type == "" {
				return nil, fail(violation("reply frame without a type"))
			}
			clipErrorType(&rep)
			return &rep, nil
		}
	}
	if err := json.Unmarshal(payload, &rep); err != nil {
		return nil, fail(violation("reply frame is not a JSON object: %v", err))
	}
	if rep.Type == "" {
		return nil, fail(violation("reply frame without a type"))
	}
	clipErrorType(&rep)
	return &rep, nil
}

// maxErrorType bounds an error's type name (a Python exception's
// qualified name), which the audit log records and every error message
// shows: a forged one of a megabyte made the audit record unreadable.
const maxErrorType = 256

// clipErrorType cuts rep's error type to maxErrorType bytes, at a rune.
func clipErrorType(rep *Reply) {
	if rep.Error == nil || len(rep.Error.Type) <= maxErrorType {
		return
	}
	t := rep.Error.Type[:maxErrorType]
	for len(t) > 0 && !utf8.ValidString(t) {
		t = t[:len(t)-1]
	}
	rep.Error.Type = t + "…"
}

// parseBigReply decodes a large reply frame as json.Unmarshal would, but
// without scanning its result three times (check, skip, copy): one
// jsonscan pass checks the whole frame and finds the result's bytes, which
// Reply.Result then holds (a slice of payload, not a copy); the rest,
// small, goes through json.Unmarshal with the result left out. ok is false
// when the frame is not a valid JSON object (json.Unmarshal then says
// why).
func parseBigReply(payload []byte) (*Reply, bool) {
	members, ok := jsonscan.Members(payload)
	if !ok {
		return nil, false
	}
	// encoding/json matches a key to the field case-insensitively, and
	// the last of repeated keys wins.
	var result []byte
	rest := make([]byte, 0, 256)
	last := 0
	for _, m := range members {
		if strings.EqualFold(m.Key, "result") {
			result = payload[m.Start:m.End]
			rest = append(append(rest, payload[last:m.Start]...), '0')
			last = m.End
		}
	}
	if result == nil {
		return nil, false
	}
	rest = append(rest, payload[last:]...)
	var rep Reply
	if err := json.Unmarshal(rest, &rep); err != nil {
		return nil, false
	}
	rep.Result = result
	return &rep, true
}

// Replies is the number of reply frames read so far.
func (c *Conn) Replies() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.replies
}

func (c *Conn) fail(err error) error {
	if c.broken == nil {
		c.broken = err
	}
	return err
}

// watchDeadline applies ctx's deadline to the files and makes cancellation
// interrupt blocked I/O. The returned func undoes both.
func watchDeadline(ctx context.Context, files ...*os.File) func() {
	dl, _ := ctx.Deadline() // zero when none: clears earlier deadlines
	for _, f := range files {
		f.SetDeadline(dl)
	}
	done := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		for _, f := range files {
			f.SetDeadline(time.Unix(1, 0))
		}
		close(done)
	})
	return func() {
		if !stop() {
			<-done
		}
	}
}

func ctxError(ctx context.Context) error {
	err := ctx.Err()
	if errors.Is(err, context.DeadlineExceeded) || err == nil {
		return &errdefs.Error{Kind: errdefs.Timeout, Msg: "call timed out", Err: context.DeadlineExceeded}
	}
	return err
}

// ioError classifies a read or write failure on the protocol pipes.
func ioError(ctx context.Context, err error, inCall bool) error {
	switch {
	case ctx.Err() != nil, errors.Is(err, os.ErrDeadlineExceeded):
		return ctxError(ctx)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.EPIPE),
		errors.Is(err, os.ErrClosed):
		return &closedError{&errdefs.SkillError{Type: TypeWorkerExited, Message: "worker closed its pipe before replying"}}
	case errors.Is(err, ErrFrameTooLarge):
		if inCall {
			return &errdefs.LimitError{Resource: "output", Detail: "reply " + err.Error()}
		}
		return violation("reply %v", err)
	case errors.Is(err, ErrEmptyFrame):
		return violation("empty reply frame")
	default:
		return violation("reading reply: %v", err)
	}
}

func violation(format string, args ...any) error {
	return &errdefs.SkillError{Type: TypeProtocolViolation, Message: fmt.Sprintf(format, args...)}
}

func harnessError(e *ErrorInfo) error {
	return &errdefs.SkillError{Type: TypeHarnessError, Message: e.Type + ": " + e.Message, Traceback: e.Traceback}
}

// closedError is a SkillError (WorkerExited) that also matches ErrWorkerClosed.
type closedError struct{ se *errdefs.SkillError }

func (e *closedError) Error() string           { return e.se.Error() }
func (e *closedError) Unwrap() []error         { return []error{e.se, ErrWorkerClosed} }
func (e *closedError) ErrorKind() errdefs.Kind { return errdefs.Skill }

// brokenError reports use of a Conn after an earlier failure.
type brokenError struct{ cause error }

func (e *brokenError) Error() string   { return ErrConnBroken.Error() + ": " + e.cause.Error() }
func (e *brokenError) Unwrap() []error { return []error{ErrConnBroken, e.cause} }

// LoadError is the worker's answer to init when the skill could not be
// loaded. Its kind is Invalid when the bundle is malformed (Type
// NoSkillClass, SeveralSkillClasses, NoSkillFile) and Skill otherwise (an
// exception while importing skill.py: it then unwraps to an
// *errdefs.SkillError).
type LoadError struct {
	Type      string
	Message   string
	Traceback string
	// Packages is the worker's requirements report, made before it tried
	// to import the skill (nil when the init asked for none).
	Packages map[string]*string
}

// PackagesOf returns the requirements report of an init: from the ready
// reply, or from the load error when the skill failed to import. ok is
// false when the worker never reported (it died, or broke the protocol).
func PackagesOf(ready *Reply, err error) (packages map[string]*string, ok bool) {
	if err == nil && ready != nil {
		return ready.Packages, true
	}
	var le *LoadError
	if errors.As(err, &le) {
		return le.Packages, true
	}
	return nil, false
}

// Invalid reports whether the bundle itself is malformed.
func (e *LoadError) Invalid() bool {
	switch e.Type {
	case "NoSkillClass", "SeveralSkillClasses", "NoSkillFile":
		return true
	}
	return false
}

func (e *LoadError) Error() string {
	if e.Invalid() {
		return "invalid skill: " + e.Message
	}
	return "loading skill failed: " + e.Type + ": " + e.Message
}

// ErrorKind is Invalid or Skill (see the type's doc).
func (e *LoadError) ErrorKind() errdefs.Kind {
	if e.Invalid() {
		return errdefs.Invalid
	}
	return errdefs.Skill
}

// Is matches the sentinel of e's kind.
func (e *LoadError) Is(target error) bool {
	if e.Invalid() {
		return target == errdefs.ErrInvalid
	}
	return target == errdefs.ErrSkill
}

// Unwrap returns the import-time exception as a SkillError (nil if Invalid).
func (e *LoadError) Unwrap() error {
	if e.Invalid() {
		return nil
	}
	return &errdefs.SkillError{Type: e.Type, Message: e.Message, Traceback: e.Traceback}
}

// Broken reports whether an earlier failure (timeout, violation, closed
// pipe) left the Conn unusable; a skill exception does not.
func (c *Conn) Broken() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.broken != nil
}
