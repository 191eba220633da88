package cli

import (
	"context"
	"sync"
	"testing"

	"github.com/skillbox-dev/skillbox/sandbox"
)

// specRecorder is a backend that records the Spec of every sandbox it
// opens and answers every call with {}.
type specRecorder struct {
	mu    sync.Mutex
	specs []sandbox.Spec
}

var oneShotBackend = &specRecorder{}

func init() {
	sandbox.Register(sandbox.Registration{Name: "test-cli-spec", New: func(sandbox.Config) (sandbox.Driver, error) { return oneShotBackend, nil }})
}

func (d *specRecorder) Name() string { return "test-cli-spec" }
func (d *specRecorder) Probe(context.Context) sandbox.Capabilities {
	return sandbox.Capabilities{Available: false, Reason: "test double", Isolating: true, Enforces: sandbox.AllFeatures()}
}
func (d *specRecorder) Open(_ context.Context, spec sandbox.Spec) (sandbox.Sandbox, error) {
	d.mu.Lock()
	d.specs = append(d.specs, spec)
	d.mu.Unlock()
	return recorderBox{}, nil
}

type recorderBox struct{}

func (recorderBox) Call(context.Context, sandbox.Request) (*sandbox.Result, error) {
	return &sandbox.Result{Value: []byte(`{}`)}, nil
}
func (recorderBox) Close() error { return nil }

// TestRunIsOneShot: `skillbox run` makes one call and exits, so it asks
// the backend for a one-shot sandbox (no zygote, no pre-forked child on
// linux).
func TestRunIsOneShot(t *testing.T) {
	h := newHarness(t)
	if o := h.run("run", "test/echo", "--backend", "test-cli-spec", "--params", `{"msg":"hi"}`); o.code != 0 {
		t.Fatalf("run: exit %d, stderr %q", o.code, o.stderr)
	}
	oneShotBackend.mu.Lock()
	defer oneShotBackend.mu.Unlock()
	if n := len(oneShotBackend.specs); n != 1 || !oneShotBackend.specs[0].OneShot {
		t.Fatalf("run opened %d sandboxes (%+v), want one with OneShot", n, oneShotBackend.specs)
	}
}
