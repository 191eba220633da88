package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/skillbox-dev/skillbox"
	"github.com/skillbox-dev/skillbox/errdefs"
)

// Envelope is a call's answer, the shape of `skillbox run --json`: on
// success OK, Result, Skill, Backend and DurationMS (plus the extensions
// Warm, Warnings, Stdout and Stderr when not empty); on failure OK false,
// Error, and Stdout and Stderr when the skill printed before it failed.
type Envelope struct {
	OK bool `json:"ok"`
	// Error is a failed call's, first after ok; a failure envelope also
	// has what the skill printed before it failed (Stdout, Stderr).
	Error      *ErrorBody          `json:"error,omitempty"`
	Result     json.RawMessage     `json:"result,omitempty"`
	Skill      *skillbox.SkillInfo `json:"skill,omitempty"`
	Backend    string              `json:"backend,omitempty"`
	DurationMS *int64              `json:"duration_ms,omitempty"`
	// Warm is set when the call ran warm (serve --warm ID, or the policy's
	// "warm: true"): calls of this skill may share state that its import
	// created.
	Warm     bool     `json:"warm,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
	Stdout   string   `json:"stdout,omitempty"`
	Stderr   string   `json:"stderr,omitempty"`
}

// ErrorBody describes a failed call: the errdefs kind and message, and for
// a skill's own exception its Python type and traceback.
type ErrorBody struct {
	Kind      string `json:"kind"`
	Message   string `json:"message"`
	Type      string `json:"type,omitempty"`
	Traceback string `json:"traceback,omitempty"`
}

// okEnvelope is the success envelope of res.
func okEnvelope(res *skillbox.Result) *Envelope {
	ms := res.Duration.Milliseconds()
	info := res.Skill
	return &Envelope{
		OK: true, Result: res.Value, Skill: &info, Backend: res.Backend, DurationMS: &ms, Warm: res.Warm,
		Warnings: res.Warnings, Stdout: string(res.Stdout), Stderr: string(res.Stderr),
	}
}

// errorEnvelope is the failure envelope of err.
func errorEnvelope(err error) *Envelope {
	body := &ErrorBody{Kind: string(errdefs.KindOf(err)), Message: err.Error()}
	var se *errdefs.SkillError
	if errors.As(err, &se) {
		body.Type, body.Traceback = se.Type, se.Traceback
	}
	// What the skill printed before it failed, as `run --json` gives it.
	stdout, stderr := errdefs.Output(err)
	return &Envelope{Error: body, Stdout: string(stdout), Stderr: string(stderr)}
}

// call runs one call of e with the server's grants. It is cancelled by ctx
// and by a shutdown that outlived its deadline.
func (s *Server) call(parent context.Context, e *entry, params json.RawMessage, via string) (*skillbox.Result, error) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	defer context.AfterFunc(s.stopCtx, cancel)()
	start := time.Now()
	res, err := s.rt.Call(ctx, e.skill.ID, params, s.cfg.Call)
	if err != nil {
		err = cancelError(parent, s.stopCtx, err)
		s.log.Info("call", "via", via, "skill", e.skill.ID, "outcome", "error",
			"kind", string(errdefs.KindOf(err)), "err", logged(err), "ms", time.Since(start).Milliseconds())
		return nil, err
	}
	s.log.Debug("call", "via", via, "skill", e.skill.ID, "outcome", "ok", "backend", res.Backend, "ms", time.Since(start).Milliseconds())
	return res, nil
}

// maxLoggedError is how much of a failed call's error its log line quotes.
const maxLoggedError = 1 << 10

// logged is err's text cut to maxLoggedError bytes: it may hold the
// skill's exception message (64 KiB as the harness cuts it, about the
// frame cap from a skill that writes its own error frame), and each
// failed call writes a line. The caller gets the whole error.
func logged(err error) string {
	s := err.Error()
	if len(s) <= maxLoggedError {
		return s
	}
	return strings.ToValidUTF8(s[:maxLoggedError], "") + fmt.Sprintf("… [%d more bytes]", len(s)-maxLoggedError)
}

// cancelError says why a call whose context ended failed, rather than
// whatever the killed worker left: a server that is stopping is
// unavailable (retry elsewhere or later); a client that went away or
// cancelled gets canceled (the Runtime's kind for a cancelled call).
// Errors of calls that ended on their own, and timeouts, pass unchanged.
func cancelError(client, stop context.Context, err error) error {
	if client.Err() == nil && stop.Err() == nil || errdefs.KindOf(err) == errdefs.Timeout {
		return err
	}
	switch {
	case stop.Err() != nil:
		return errdefs.Wrap(errdefs.Unavailable, err, "call cancelled: the server is shutting down")
	case errors.Is(client.Err(), context.Canceled):
		if errdefs.KindOf(err) == errdefs.Canceled {
			return err
		}
		return errdefs.Wrap(errdefs.Canceled, err, "call cancelled")
	case client.Err() != nil:
		return errdefs.Wrap(errdefs.Unavailable, err, "call cancelled")
	}
	return err
}
