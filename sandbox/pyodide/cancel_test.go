//go:build unix

package pyodide

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/sandbox/sandboxtest"
)

// TestCancelWhileWaitingIsCanceled: a call its caller cancels while it
// waits for a worker (the only one is busy) is kind canceled, as the linux
// backend reports it (exit 130 in the CLI), not a timeout; so is the busy
// call when its caller cancels it in turn.
func TestCancelWhileWaitingIsCanceled(t *testing.T) {
	d := New(Options{MaxWorkers: 1})
	if c := d.Probe(context.Background()); !c.Available {
		t.Skipf("pyodide backend unavailable: %s", c.Reason)
	}
	spec := sandboxtest.SpecFor(sandboxtest.FunctionalSkill(t, "sleeper"), sandboxtest.Options{Limits: sandbox.Limits{Timeout: time.Minute}})
	sb, err := d.Open(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	b := sb.(*box)

	busyCtx, stopBusy := context.WithCancel(context.Background())
	defer stopBusy()
	busy := make(chan error, 1)
	go func() {
		_, err := sb.Call(busyCtx, sandbox.Request{Params: json.RawMessage(`{"seconds": 60}`)})
		busy <- err
	}()
	// The busy call has taken the only worker once none is idle (Open
	// started it, idle).
	for guard := time.Now().Add(30 * time.Second); len(b.idle) > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(guard) {
			t.Fatal("the first call did not take the worker")
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = sb.Call(ctx, sandbox.Request{Params: json.RawMessage(`{"seconds": 0}`)})
	if errdefs.KindOf(err) != errdefs.Canceled {
		t.Errorf("call cancelled while waiting for a worker: %v (kind %s), want canceled", err, errdefs.KindOf(err))
	}

	stopBusy()
	select {
	case err := <-busy:
		if errdefs.KindOf(err) != errdefs.Canceled {
			t.Errorf("call cancelled while it ran: %v (kind %s), want canceled", err, errdefs.KindOf(err))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the cancelled call did not return")
	}
}
