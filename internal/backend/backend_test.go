package backend

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/sandbox"
)

func TestCheckRequire(t *testing.T) {
	c := sandbox.Capabilities{Enforces: []sandbox.Feature{sandbox.FeatureTimeout, sandbox.FeatureOutputCap}}
	if err := CheckRequire(c, "x", []sandbox.Feature{sandbox.FeatureTimeout}); err != nil {
		t.Fatal(err)
	}
	err := CheckRequire(c, "x", []sandbox.Feature{sandbox.FeatureTimeout, sandbox.FeatureMemory, sandbox.FeatureNetAllowlist})
	if !errors.Is(err, errdefs.ErrUnsupported) || !strings.Contains(err.Error(), `backend "x" cannot enforce memory-limit, net-allowlist`) {
		t.Fatalf("err = %v", err)
	}
}

func TestTimeoutErrorNamesTheLimit(t *testing.T) {
	l := sandbox.Limits{Timeout: 2 * time.Second}
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	err := TimeoutError(ctx, l, "a/b", errdefs.New(errdefs.Timeout, "read timed out"))
	if !errors.Is(err, errdefs.ErrTimeout) || err.Error() != "call to a/b timed out after 2s" {
		t.Errorf("past the deadline: %v", err)
	}
	other := errdefs.New(errdefs.Skill, "boom")
	if got := TimeoutError(ctx, l, "a/b", other); got != other {
		t.Errorf("a non-timeout error changed: %v", got)
	}
	if got := TimeoutError(context.Background(), l, "a/b", errdefs.New(errdefs.Timeout, "x")); !strings.Contains(got.Error(), "x") {
		t.Errorf("a timeout not caused by the deadline was renamed: %v", got)
	}
	// The worker's copy of the deadline may fire before ctx's timer: the
	// deadline has passed, ctx.Err() is still nil ("call timed out" leaked).
	early := lateTimer{Context: context.Background(), d: time.Now().Add(-time.Millisecond)}
	if err := TimeoutError(early, l, "a/b", errdefs.New(errdefs.Timeout, "call timed out")); err.Error() != "call to a/b timed out after 2s" {
		t.Errorf("deadline passed, timer not fired yet: %v", err)
	}
}

// lateTimer is a context whose deadline has passed but whose timer has not
// fired yet.
type lateTimer struct {
	context.Context
	d time.Time
}

func (c lateTimer) Deadline() (time.Time, bool) { return c.d, true }
