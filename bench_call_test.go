package skillbox_test

import (
	"context"
	"testing"

	"github.com/skillbox-dev/skillbox"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// BenchmarkCall is one single-use call of a tiny skill through a
// long-lived Runtime on the linux backend, as serve makes it: the
// Runtime's own per-call work (resolve, policy, validation, audit) on top
// of the backend's.
func BenchmarkCall(b *testing.B) {
	if _, err := sandbox.Lookup("linux"); err != nil {
		b.Skipf("no linux backend: %v", err)
	}
	rt := newTestRuntime(b, skillbox.WithBackend("linux"))
	ctx := context.Background()
	if _, err := rt.Call(ctx, "test/counter", nil, skillbox.CallOptions{}); err != nil {
		b.Skipf("linux backend unusable here: %v", err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := rt.Call(ctx, "test/counter", nil, skillbox.CallOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
