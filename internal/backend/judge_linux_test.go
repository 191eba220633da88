package backend

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/cgroup"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// TestJudge: what a failed call's error becomes without a cgroup to ask
// (the counters of a real one are the backends' conformance tests').
func TestJudge(t *testing.T) {
	j := &Judge{SkillID: "t/s", Limits: sandbox.Limits{Timeout: 2 * time.Second, Output: 100}}
	skillErr := &errdefs.SkillError{Type: "ValueError", Message: "x"}

	if err := j.CallError(context.Background(), skillErr, nil, cgroup.Counts{}); err != skillErr {
		t.Errorf("a skill's error: %v", err)
	}
	out := &errdefs.LimitError{Resource: "output"}
	if err := j.CallError(context.Background(), out, nil, cgroup.Counts{}); err != out || out.Limit != "100 bytes" {
		t.Errorf("output limit: %v (limit %q)", err, out.Limit)
	}

	past, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	err := j.CallError(past, errors.New("worker: read: i/o timeout"), nil, cgroup.Counts{})
	if errdefs.KindOf(err) != errdefs.Timeout || err.Error() != "call to t/s timed out after 2s" {
		t.Errorf("past the deadline: %v", err)
	}

	cancelled, stop := context.WithCancel(context.Background())
	stop()
	if err := j.CallError(cancelled, skillErr, nil, cgroup.Counts{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v, want the context's error", err)
	}

	// The worker's copy of the deadline may fire before ctx's own timer.
	soon, stop2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Millisecond))
	defer stop2()
	if !CallTimedOut(soon, errdefs.New(errdefs.Timeout, "pipe deadline")) {
		t.Error("a timeout error past the deadline is not a timed-out call")
	}
	if CallTimedOut(context.Background(), errdefs.New(errdefs.Timeout, "pipe deadline")) {
		t.Error("a timeout error without a deadline passed is a timed-out call")
	}
	if j.LimitHit(nil, cgroup.Counts{}) != nil {
		t.Error("no cgroup, yet a limit was hit")
	}
}
