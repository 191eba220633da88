//go:build linux

package gvisor_test

import (
	"context"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/sandbox/gvisor"
	"github.com/skillbox-dev/skillbox/sandbox/sandboxtest"
)

// driver returns a gvisor driver, or skips the test with the reason runsc
// cannot run here.
func driver(t testing.TB) *gvisor.Driver {
	t.Helper()
	d := gvisor.New(gvisor.Options{TempDir: t.TempDir()})
	if c := d.Probe(context.Background()); !c.Available {
		t.Skipf("runsc: %s", c.Reason)
	}
	return d
}

// options are the suite's options for d: what it probes as enforcing, a
// subset of the attack corpus, and a grace that covers starting a gVisor
// sandbox on a loaded machine (every single-use call starts one; the
// bound guards against hangs, it measures nothing).
func options(d *gvisor.Driver) sandboxtest.Options {
	opts := sandboxtest.OptionsFromProbe(context.Background(), d)
	opts.Grace = 20 * time.Second
	// The kernel class is left out: it checks the host kernel's walls
	// (seccomp, Landlock, /proc's subset), and under gVisor those calls
	// are answered by the sentry (ptrace, unshare, io_uring, SysV IPC,
	// /proc/meminfo "succeed" inside it), so its assertions do not apply.
	opts.AttackClasses = []string{"secrets", "write", "net", "procs", "protocol", "state", "dos"}
	// gVisor's file system walks go through its gofer: slower than the
	// host's, and the corpus walks whole folders.
	opts.Limits.Timeout = 30 * time.Second
	opts.KnownGaps = map[string]string{
		"write/scratch-exec": "gVisor refuses execve from the noexec scratch, but not the dynamic loader running a file there, an executable mapping of it or dlopen (docs/CONTAINERS.md, gVisor)",
	}
	return opts
}

// TestConformance runs the conformance suite against gVisor: the
// functional calls (results, errors, timeouts, limits, output, single-use
// and session), the attack classes of options, and the host leak checks.
func TestConformance(t *testing.T) {
	d := driver(t)
	sandboxtest.Run(t, d, options(d))
}
