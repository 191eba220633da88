//go:build unix

package pyodide_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/sandbox/pyodide"
	"github.com/skillbox-dev/skillbox/sandbox/sandboxtest"
)

// driver returns the driver over the default cache, skipping the test when
// Deno and Pyodide are not installed there.
func driver(t testing.TB) *pyodide.Driver {
	t.Helper()
	d := pyodide.New(pyodide.Options{})
	if c := d.Probe(context.Background()); !c.Available {
		t.Skipf("pyodide backend unavailable: %s (scripts/setup installs it; TestUnavailable checks the refusal)", c.Reason)
	}
	return d
}

// TestConformance runs the shared functional suite.
func TestConformance(t *testing.T) {
	d := driver(t)
	opts := sandboxtest.OptionsFromProbe(context.Background(), d)
	if !opts.Isolating {
		t.Fatal("pyodide backend does not claim to isolate")
	}
	sandboxtest.RunFunctional(t, d, opts)
}

// TestUnavailable checks that an empty cache makes Probe unavailable and
// Open fail with kind unavailable, naming what is missing and the fix.
func TestUnavailable(t *testing.T) {
	d := pyodide.New(pyodide.Options{CacheDir: t.TempDir()})
	c := d.Probe(context.Background())
	if c.Available {
		t.Fatal("Probe says available with an empty cache")
	}
	for _, want := range []string{"deno " + pyodide.DenoVersion, "pyodide " + pyodide.PyodideVersion, "skillbox setup pyodide"} {
		if !strings.Contains(c.Reason, want) {
			t.Errorf("Probe reason %q does not mention %q", c.Reason, want)
		}
	}
	spec := sandboxtest.SpecFor(sandboxtest.FunctionalSkill(t, "hello"), sandboxtest.Options{})
	sb, err := d.Open(context.Background(), spec)
	if err == nil {
		sb.Close()
		t.Fatal("Open succeeded without deno and pyodide")
	}
	if !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), "pyodide") {
		t.Fatalf("Open error %v (kind %s), want unavailable naming pyodide", err, errdefs.KindOf(err))
	}
}

// TestRegistered checks the registration.
func TestRegistered(t *testing.T) {
	d, err := sandbox.Lookup(pyodide.Name)
	if err != nil {
		t.Fatal(err)
	}
	if d.Name() != pyodide.Name {
		t.Fatalf("Lookup(pyodide).Name() = %q", d.Name())
	}
	for _, r := range sandbox.List() {
		if r.Name == pyodide.Name && (r.Strength <= 0 || r.Strength >= 100) {
			t.Errorf("strength %d, want between process and linux", r.Strength)
		}
	}
}
