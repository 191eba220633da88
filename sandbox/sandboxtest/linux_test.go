//go:build linux

package sandboxtest_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/image/imagetest"
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

// TestLinuxExec runs the whole suite, attacks included, against the linux
// backend's other single-use paths, each alone: exec: zygote (every call
// forked from a zygote) and exec: prestart (every call in a jail of its
// own, started before the call, even when calls come faster than spares
// start). The default, exec: auto, takes both (TestLinux).
func TestLinuxExec(t *testing.T) {
	for _, exec := range []string{linux.ExecZygote, linux.ExecPrestart} {
		t.Run(exec, func(t *testing.T) {
			d := linux.New(linux.Options{Exec: exec})
			c := d.Probe(context.Background())
			if !c.Available {
				t.Skipf("linux backend unavailable on this host: %s", c.Reason)
			}
			sandboxtest.Run(t, d, sandboxtest.OptionsFromProbe(context.Background(), d))
		})
	}
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

// TestLinuxContainer runs the attack corpus, then the host leak checks,
// against the linux backend with every skill in a container image
// (execution: container; imagetest's image of the host's Python, read from
// an OCI layout): untrusted (a fresh jail and interpreter per call,
// started ahead of it)
// and trusted (its digest in trusted_environments: a zygote and single-use
// forks). The jail's root is the image's, so an attack aims at the host's
// files through an image that has none of them.
func TestLinuxContainer(t *testing.T) {
	cache := filepath.Join(t.TempDir(), "images")
	d := linux.New(linux.Options{ImageCache: cache})
	c := d.Probe(context.Background())
	if !c.Available {
		t.Skipf("linux backend unavailable on this host: %s", c.Reason)
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: the jail's cgroups and uid switch are tested as root (CI runs as root)")
	}
	layout := filepath.Join(t.TempDir(), "image")
	imagetest.PythonImage(t, layout)
	digest, err := imagetest.Digest(layout)
	if err != nil {
		t.Fatal(err)
	}
	for _, trusted := range []bool{false, true} {
		name := map[bool]string{false: "untrusted", true: "trusted"}[trusted]
		t.Run(name, func(t *testing.T) {
			opts := sandboxtest.OptionsFromProbe(context.Background(), d)
			if !trusted {
				// Each untrusted call starts a jail and the image's
				// interpreter within its timeout; on a loaded test machine
				// the suite's 5 s left the memory bomb too little time to
				// reach its limit (a timeout, not the memory error the
				// attack must end with).
				opts.Limits.Timeout = 15 * time.Second
			}
			opts.AdjustSpec = func(s *sandbox.Spec) {
				s.Container = &sandbox.Container{Image: "oci:" + layout}
				if trusted {
					s.TrustedEnvironments = []string{digest}
				}
			}
			sandboxtest.Run(t, d, opts)
		})
	}
}
