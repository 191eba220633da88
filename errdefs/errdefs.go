// Package errdefs defines the few kinds of error skillbox reports and the
// typed errors that carry them.
//
// Every error that leaves a skillbox package can be classified with [KindOf].
// Kinds are stable strings: the CLI prints them in its --json envelope and maps
// them to exit codes with [ExitCode], and outside scripts rely on both.
package errdefs

import (
	"context"
	"errors"
	"fmt"
)

// Kind classifies an error. The zero value is not a valid kind.
type Kind string

// The kinds. Their string values are part of the CLI contract.
const (
	// Skill: the skill itself failed (raised, returned bad output, died).
	Skill Kind = "skill"
	// Invalid: bad usage, manifest, bundle or parameters.
	Invalid Kind = "invalid"
	// NotFound: no skill (or other named thing) by that name.
	NotFound Kind = "not_found"
	// Denied: policy refused (trust gate, permission not granted).
	Denied Kind = "denied"
	// Timeout: the call ran past its deadline.
	Timeout Kind = "timeout"
	// Limit: a resource limit was hit (memory, pids, output, ...).
	Limit Kind = "limit"
	// Unavailable: a backend or isolation layer is missing on this host.
	Unavailable Kind = "unavailable"
	// Unsupported: the chosen backend cannot enforce something asked of it.
	Unsupported Kind = "unsupported"
	// Internal: a bug or an unexpected host failure.
	Internal Kind = "internal"
	// Canceled: the caller cancelled the call (Ctrl-C on the CLI, a client
	// that went away, a cancelled context) before it finished.
	Canceled Kind = "canceled"
)

// ExitCode is the CLI exit status for errors of kind k.
func ExitCode(k Kind) int {
	switch k {
	case Skill:
		return 1
	case Invalid, NotFound:
		return 2
	case Denied:
		return 3
	case Timeout, Limit:
		return 4
	case Unavailable, Unsupported:
		return 5
	case Canceled:
		// 128+SIGINT, what a shell reports for a command stopped by Ctrl-C.
		return 130
	default:
		return 6
	}
}

// Error is an error of a known kind with a message for humans.
// Msg is the whole message (it already includes the cause's text where that
// helps); Err, when set, is the cause and is reachable with errors.Unwrap.
type Error struct {
	Kind Kind
	Msg  string
	Err  error
}

func (e *Error) Error() string {
	if e.Msg == "" && e.Err != nil {
		return e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is the sentinel of e's kind, so that
// errors.Is(err, errdefs.ErrDenied) works through any wrapping.
func (e *Error) Is(target error) bool {
	s, ok := target.(sentinel)
	return ok && Kind(s) == e.Kind
}

type sentinel Kind

func (s sentinel) Error() string { return string(s) }

// Sentinels for errors.Is. Every *Error matches the sentinel of its kind.
var (
	ErrSkill       error = sentinel(Skill)
	ErrInvalid     error = sentinel(Invalid)
	ErrNotFound    error = sentinel(NotFound)
	ErrDenied      error = sentinel(Denied)
	ErrTimeout     error = sentinel(Timeout)
	ErrLimit       error = sentinel(Limit)
	ErrUnavailable error = sentinel(Unavailable)
	ErrUnsupported error = sentinel(Unsupported)
	ErrInternal    error = sentinel(Internal)
	ErrCanceled    error = sentinel(Canceled)
)

// New returns an *Error of kind k with a formatted message.
// A %w verb in format wraps its argument as the cause.
func New(k Kind, format string, args ...any) error {
	wrapped := fmt.Errorf(format, args...)
	return &Error{Kind: k, Msg: wrapped.Error(), Err: errors.Unwrap(wrapped)}
}

// Wrap returns an *Error of kind k whose message is msg and whose cause is err.
// It returns nil if err is nil.
func Wrap(k Kind, err error, msg string) error {
	if err == nil {
		return nil
	}
	return &Error{Kind: k, Msg: msg + ": " + err.Error(), Err: err}
}

// KindOf classifies err: the kind of the outermost *Error in its chain, or of a
// typed error with a Kind method; a context deadline is Timeout, a cancelled
// context Canceled; anything else is Internal. KindOf(nil) is "".
func KindOf(err error) Kind {
	if err == nil {
		return ""
	}
	var k interface{ ErrorKind() Kind }
	if errors.As(err, &k) {
		return k.ErrorKind()
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return Timeout
	}
	if errors.Is(err, context.Canceled) {
		return Canceled
	}
	return Internal
}

// ErrorKind lets *Error satisfy the interface KindOf looks for.
func (e *Error) ErrorKind() Kind { return e.Kind }

// SkillError is an exception raised by a skill, or a failure of the skill's
// own making (a non-JSON result, a worker that died mid-call).
type SkillError struct {
	// Type is the Python exception type (e.g. "ValueError"), or a
	// skillbox label such as "WorkerExited" or "ResultNotJSON".
	Type string `json:"type"`
	// Message is the exception message.
	Message string `json:"message"`
	// Traceback is the bounded Python traceback, if any.
	Traceback string `json:"traceback,omitempty"`
}

func (e *SkillError) Error() string {
	if e.Message == "" {
		return "skill failed: " + e.Type
	}
	return "skill failed: " + e.Type + ": " + e.Message
}

// ErrorKind reports Skill.
func (e *SkillError) ErrorKind() Kind { return Skill }

// Is matches ErrSkill.
func (e *SkillError) Is(target error) bool { return target == ErrSkill }

// LimitError reports that a named resource limit was exceeded.
type LimitError struct {
	// Resource names the limit: "memory", "pids", "output", "stdout", "cpu", ...
	Resource string
	// Limit is the configured value in human form ("256MiB"), if known.
	Limit string
	// Detail adds context, if any.
	Detail string
}

func (e *LimitError) Error() string {
	s := e.Resource + " limit exceeded"
	if e.Limit != "" {
		s += " (" + e.Limit + ")"
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// ErrorKind reports Limit.
func (e *LimitError) ErrorKind() Kind { return Limit }

// Is matches ErrLimit.
func (e *LimitError) Is(target error) bool { return target == ErrLimit }

// DeniedError is a policy refusal. It names what was denied and how an
// operator grants it.
type DeniedError struct {
	// Permission names what was refused, e.g. "env ETHERSCAN_API_KEY",
	// "network api.example.com:443", "trust".
	Permission string
	// Reason says why, in a sentence.
	Reason string
	// Grant is the exact flag or policy line that would grant it.
	Grant string
}

func (e *DeniedError) Error() string {
	s := "denied: " + e.Permission
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	if e.Grant != "" {
		s += " (grant with " + e.Grant + ")"
	}
	return s
}

// ErrorKind reports Denied.
func (e *DeniedError) ErrorKind() Kind { return Denied }

// Is matches ErrDenied.
func (e *DeniedError) Is(target error) bool { return target == ErrDenied }

// warned is an error that comes with the warnings of the call that failed.
type warned struct {
	err      error
	warnings []string
}

func (w *warned) Error() string { return w.err.Error() }
func (w *warned) Unwrap() error { return w.err }

// WithWarnings returns err carrying warnings, the notes the caller must see
// even though the call failed (a required variable that was not granted,
// egress that was refused): Warnings returns them, and the error's text,
// kind and chain are err's. It returns err itself when there are no
// warnings, and nil for a nil err.
func WithWarnings(err error, warnings []string) error {
	if err == nil || len(warnings) == 0 {
		return err
	}
	return &warned{err: err, warnings: warnings}
}

// Warnings returns the warnings WithWarnings attached to err or to an
// error it wraps, or nil.
func Warnings(err error) []string {
	var w *warned
	if errors.As(err, &w) {
		return w.warnings
	}
	return nil
}

// printed is an error that comes with what the skill printed before its
// call failed.
type printed struct {
	err            error
	stdout, stderr []byte
}

func (p *printed) Error() string { return p.err.Error() }
func (p *printed) Unwrap() error { return p.err }

// WithOutput returns err carrying what the skill printed to stdout and
// stderr before its call failed (a print before a raise, the progress of
// a call that timed out): Output returns them, and the error's text, kind
// and chain are err's. It returns err itself when both are empty, and nil
// for a nil err.
func WithOutput(err error, stdout, stderr []byte) error {
	if err == nil || len(stdout)+len(stderr) == 0 {
		return err
	}
	return &printed{err: err, stdout: stdout, stderr: stderr}
}

// WithOutputOf returns err carrying the output that from carries: for an
// error that replaces from, explaining it better.
func WithOutputOf(err, from error) error {
	stdout, stderr := Output(from)
	return WithOutput(err, stdout, stderr)
}

// Output returns what WithOutput attached to err or to an error it wraps.
func Output(err error) (stdout, stderr []byte) {
	var p *printed
	if errors.As(err, &p) {
		return p.stdout, p.stderr
	}
	return nil, nil
}
