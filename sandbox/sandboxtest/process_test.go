package sandboxtest_test

import (
	"context"
	"testing"

	"github.com/skillbox-dev/skillbox/sandbox/process"
	"github.com/skillbox-dev/skillbox/sandbox/sandboxtest"
)

// TestProcess runs the functional part against the process backend; its
// attack part skips because the backend isolates nothing.
func TestProcess(t *testing.T) {
	d := process.Driver{}
	c := d.Probe(context.Background())
	if !c.Available {
		t.Skipf("process backend unavailable: %s", c.Reason)
	}
	opts := sandboxtest.OptionsFromProbe(context.Background(), d)
	if opts.Isolating {
		t.Fatal("process backend claims to isolate")
	}
	sandboxtest.Run(t, d, opts)
}
