package backend

import (
	"context"
	"errors"
	"fmt"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/cgroup"
	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/skill"
)

// Judge turns the error of a failed call into what its caller sees: the
// call's timeout, the cgroup limit it ran into, or the error itself. The
// linux and gvisor backends judge alike, each in its own words.
type Judge struct {
	SkillID string
	Limits  sandbox.Limits // the sandbox's, with their defaults
	// OOM and Refused are the details of a memory and a pids limit hit:
	// what the kernel's OOM killer stopped, what the pids limit refused.
	OOM, Refused string
}

// LimitHit names the limit a failed call ran into, judged by cg's
// counters before and after it, or returns nil. An OOM kill looks like a
// dead worker, a refused fork like an exception: only the counters tell.
func (j *Judge) LimitHit(cg *cgroup.Group, before cgroup.Counts) error {
	after := cgroup.Snapshot(cg)
	if after.OOM > before.OOM {
		return &errdefs.LimitError{Resource: "memory", Limit: skill.FormatSize(j.Limits.Memory), Detail: j.OOM}
	}
	if after.Pids > before.Pids {
		return &errdefs.LimitError{Resource: "pids", Limit: fmt.Sprint(j.Limits.Pids), Detail: j.Refused}
	}
	return nil
}

// TimeoutErr is the error of a call past its deadline, in the one wording
// every backend uses (TimedOut), or ctx's error when the call was
// cancelled instead.
func (j *Judge) TimeoutErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return TimedOut(j.SkillID, j.Limits.Timeout)
}

// CallError turns a failed call's error into what the caller sees: the
// timeout, the cgroup limit the skill ran into, or err itself (an output
// limit's size filled in).
func (j *Judge) CallError(ctx context.Context, err error, cg *cgroup.Group, before cgroup.Counts) error {
	if CallTimedOut(ctx, err) {
		return j.TimeoutErr(ctx)
	}
	if lerr := j.LimitHit(cg, before); lerr != nil {
		return lerr
	}
	var le *errdefs.LimitError
	if errors.As(err, &le) && le.Resource == "output" && le.Limit == "" {
		le.Limit = fmt.Sprintf("%d bytes", j.Limits.Output)
	}
	return err
}

// CallTimedOut reports whether a failed call ran out of time: its
// context's deadline passed (or it was cancelled), or the worker's copy of
// that deadline, set on the protocol pipes, fired first.
func CallTimedOut(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errdefs.KindOf(err) == errdefs.Timeout && PastDeadline(ctx)
}
