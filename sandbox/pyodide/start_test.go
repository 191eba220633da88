//go:build unix

package pyodide

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/sandbox/sandboxtest"
)

// TestStartTimeoutError: the message names the deadline that ran out, the
// caller's or the backend's own start allowance.
func TestStartTimeoutError(t *testing.T) {
	begun := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name           string
		timeout        time.Duration
		callerDeadline time.Time
		callerHas      bool
		want, not      string
	}{
		{"no caller deadline", 30 * time.Second, time.Time{}, false,
			"within the backend's start allowance of 45s (the 30s call timeout + 15s to start Deno and Pyodide)", "caller"},
		{"caller's deadline later than the allowance", 5 * time.Second, begun.Add(time.Minute), true,
			"within the backend's start allowance of 20s (the 5s call timeout + 15s", "caller"},
		{"caller's deadline first", 30 * time.Second, begun.Add(1500 * time.Millisecond), true,
			"before the caller's deadline, 1.5s after the worker's start began (the backend alone allows a start 45s)", "start allowance of"},
		{"caller's deadline already passed", 30 * time.Second, begun.Add(-time.Second), true,
			"the caller's deadline had passed before the worker's start began", "start allowance of"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := startTimeoutError(tc.timeout, begun, tc.callerDeadline, tc.callerHas)
			if errdefs.KindOf(err) != errdefs.Timeout || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), tc.not) {
				t.Errorf("err = %v (kind %s); want timeout containing %q and not %q", err, errdefs.KindOf(err), tc.want, tc.not)
			}
		})
	}
}

// TestStartNamesCallerDeadline opens a sandbox (which starts a worker)
// under a caller's deadline far shorter than a start takes: the timeout
// must name the caller's deadline, not the backend's allowance.
func TestStartNamesCallerDeadline(t *testing.T) {
	d := testDriver(t)
	spec := sandboxtest.SpecFor(sandboxtest.FunctionalSkill(t, "hello"), sandboxtest.Options{Limits: sandbox.Limits{Timeout: 30 * time.Second}})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	sb, err := d.Open(ctx, spec)
	if err == nil {
		sb.Close()
		t.Skip("a worker started within 50ms; the caller's deadline did not run out")
	}
	if errdefs.KindOf(err) != errdefs.Timeout || !strings.Contains(err.Error(), "before the caller's deadline") || strings.Contains(err.Error(), "start allowance of") {
		t.Errorf("Open under a 50ms deadline: %v (kind %s); want a timeout naming the caller's deadline", err, errdefs.KindOf(err))
	}
}

func testDriver(t *testing.T) *Driver {
	t.Helper()
	d := New(Options{})
	if c := d.Probe(context.Background()); !c.Available {
		t.Skipf("pyodide backend unavailable: %s", c.Reason)
	}
	return d
}
