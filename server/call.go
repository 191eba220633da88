package server

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/skillbox-dev/skillbox"
	"github.com/skillbox-dev/skillbox/errdefs"
)

// Envelope is a call's answer, the shape of `skillbox run --json`: on
// success OK, Result, Skill, Backend and DurationMS (plus the extensions
// Warnings, Stdout and Stderr when not empty); on failure OK false and Error.
type Envelope struct {
	OK         bool                `json:"ok"`
	Result     json.RawMessage     `json:"result,omitempty"`
	Skill      *skillbox.SkillInfo `json:"skill,omitempty"`
	Backend    string              `json:"backend,omitempty"`
	DurationMS *int64              `json:"duration_ms,omitempty"`
	Warnings   []string            `json:"warnings,omitempty"`
	Stdout     string              `json:"stdout,omitempty"`
	Stderr     string              `json:"stderr,omitempty"`
	Error      *ErrorBody          `json:"error,omitempty"`
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
		OK: true, Result: res.Value, Skill: &info, Backend: res.Backend, DurationMS: &ms,
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
	return &Envelope{Error: body}
}

// call runs one call of e with the server's grants. It is cancelled by ctx
// and by a shutdown that outlived its deadline.
func (s *Server) call(ctx context.Context, e *entry, params json.RawMessage, via string) (*skillbox.Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.stopCtx, cancel)()
	start := time.Now()
	res, err := s.rt.Call(ctx, e.skill.ID, params, s.cfg.Call)
	if err != nil {
		if ctx.Err() != nil && errdefs.KindOf(err) != errdefs.Timeout {
			// The client went away or the server is stopping: say so
			// rather than reporting whatever the killed worker left.
			err = errdefs.Wrap(errdefs.Unavailable, err, "call cancelled")
		}
		s.log.Info("call", "via", via, "skill", e.skill.ID, "outcome", "error",
			"kind", string(errdefs.KindOf(err)), "err", err.Error(), "ms", time.Since(start).Milliseconds())
		return nil, err
	}
	s.log.Debug("call", "via", via, "skill", e.skill.ID, "outcome", "ok", "backend", res.Backend, "ms", time.Since(start).Milliseconds())
	return res, nil
}
