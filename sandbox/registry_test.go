package sandbox

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/errdefs"
)

type fakeDriver struct {
	name string
	caps Capabilities
}

func (f *fakeDriver) Name() string                                { return f.name }
func (f *fakeDriver) Probe(context.Context) Capabilities          { return f.caps }
func (f *fakeDriver) Open(context.Context, Spec) (Sandbox, error) { return nil, errors.New("fake") }

func register(t *testing.T, name string, strength int, caps Capabilities) {
	t.Helper()
	Register(Registration{Name: name, Strength: strength, Summary: "fake", New: func(Config) (Driver, error) {
		return &fakeDriver{name: name, caps: caps}, nil
	}})
	t.Cleanup(func() {
		mu.Lock()
		delete(registry, name)
		delete(drivers, name)
		mu.Unlock()
	})
}

func TestChooseAuto(t *testing.T) {
	register(t, "plain", 0, Capabilities{Available: true})
	register(t, "weak", 10, Capabilities{Available: true, Isolating: true})
	register(t, "strong", 100, Capabilities{Available: false, Reason: "no landlock"})

	d, err := Choose(context.Background(), Auto, false)
	if err != nil || d.Name() != "weak" {
		t.Fatalf("auto chose %v, %v; want weak (strong is unavailable)", d, err)
	}
	if d, err := Choose(context.Background(), "plain", false); err != nil || d.Name() != "plain" {
		t.Fatalf("explicit plain: %v, %v", d, err)
	}
}

func TestChooseAutoNeverPicksNonIsolating(t *testing.T) {
	register(t, "plain", 0, Capabilities{Available: true})
	register(t, "strong", 100, Capabilities{Available: false, Reason: "no landlock"})
	_, err := Choose(context.Background(), "", false)
	if !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("err = %v, want unavailable", err)
	}
	for _, want := range []string{"strong: no landlock", "--backend process"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// auto takes a driver that lacks layers only with the operator's explicit
// best-effort opt-in, and only if the driver says it can run without them.
func TestChooseAutoBestEffort(t *testing.T) {
	register(t, "degraded", 100, Capabilities{Available: false, Reason: "no cgroups", BestEffort: true, Isolating: true})
	register(t, "broken", 200, Capabilities{Available: false, Reason: "no namespaces", Isolating: true})
	if _, err := Choose(context.Background(), Auto, false); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("without the opt-in: err = %v, want unavailable", err)
	}
	d, err := Choose(context.Background(), Auto, true)
	if err != nil || d.Name() != "degraded" {
		t.Fatalf("with the opt-in: %v, %v; want degraded (broken cannot run at all)", d, err)
	}
}

// With no isolating backend fully available, the refusal offers
// --best-effort first when a backend can run without the layers it lacks
// (it keeps the other walls), and the process backend (no walls) last.
func TestChooseRefusalOffersBestEffortFirst(t *testing.T) {
	register(t, "degraded", 100, Capabilities{Available: false, Reason: "missing cgroup-memory", BestEffort: true, Isolating: true})
	register(t, "wasm", 50, Capabilities{Available: false, Reason: "backend wasm: not installed", Isolating: true})
	_, err := Choose(context.Background(), Auto, false)
	if !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("err = %v, want unavailable", err)
	}
	msg := err.Error()
	be, proc := strings.Index(msg, "--best-effort runs degraded"), strings.Index(msg, "--backend process")
	if be < 0 || proc < 0 || be > proc {
		t.Errorf("want --best-effort (for degraded) before --backend process: %q", msg)
	}
	if !strings.Contains(msg, "without any isolation, for trusted skills only") {
		t.Errorf("the process fallback lost its warning: %q", msg)
	}
	if strings.Contains(msg, "wasm: backend wasm:") {
		t.Errorf("a reason naming its backend is prefixed twice: %q", msg)
	}
	// Without a backend that can run degraded, only the process fallback.
	if got := fallbacks(nil); strings.Contains(got, "--best-effort") || !strings.Contains(got, "--backend process") {
		t.Errorf("fallbacks(nil) = %q", got)
	}
}

func TestLookupUnknown(t *testing.T) {
	register(t, "plain", 0, Capabilities{Available: true})
	_, err := Lookup("nope")
	if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "known: auto, plain") {
		t.Fatalf("err = %v", err)
	}
}

func TestLimitsDefaults(t *testing.T) {
	l := Limits{Memory: 1 << 20}.WithDefaults()
	if l.Memory != 1<<20 || l.Timeout != DefaultTimeout || l.Pids != DefaultPids || l.Output != DefaultOutput || l.Stdio != DefaultStdio {
		t.Fatalf("got %+v", l)
	}
}
