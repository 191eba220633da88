//go:build linux

package sandboxtest_test

import (
	"context"
	"errors"
	"testing"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/sandbox/linux"
	"github.com/skillbox-dev/skillbox/sandbox/sandboxtest"
)

// TestLinux runs the whole conformance suite, attacks included, against
// the linux backend when this host provides every isolation layer.
func TestLinux(t *testing.T) {
	d := linux.New(linux.Options{})
	c := d.Probe(context.Background())
	if !c.Available {
		t.Skipf("linux backend unavailable on this host: %s (TestLinuxUnavailable checks the refusal)", c.Reason)
	}
	if !c.Isolating {
		t.Fatal("linux backend probes as available but not isolating")
	}
	opts := sandboxtest.OptionsFromProbe(context.Background(), d)
	sandboxtest.Run(t, d, opts)
}

// TestLinuxUnavailable checks that, on a host lacking a layer, Open refuses
// with kind unavailable instead of running weaker.
func TestLinuxUnavailable(t *testing.T) {
	d := linux.New(linux.Options{})
	c := d.Probe(context.Background())
	if c.Available {
		t.Skip("linux backend is available here; nothing to refuse")
	}
	spec := sandboxtest.SpecFor(sandboxtest.FunctionalSkill(t, "hello"), sandboxtest.Options{})
	sb, err := d.Open(context.Background(), spec)
	if err == nil {
		sb.Close()
		t.Fatalf("Open succeeded although Probe says unavailable (%s)", c.Reason)
	}
	if !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("Open error %v is kind %s, want unavailable", err, errdefs.KindOf(err))
	}
}

// TestLinuxRegistered checks that the backend registers itself as "linux".
func TestLinuxRegistered(t *testing.T) {
	d, err := sandbox.Lookup("linux")
	if err != nil {
		t.Fatal(err)
	}
	if d.Name() != "linux" {
		t.Fatalf("Lookup(linux).Name() = %q", d.Name())
	}
}
