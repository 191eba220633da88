package jailbuild

import "context"

type bestEffortKey struct{}

// WithBestEffort returns ctx telling a Builder that a build may run
// without the memory or pids controller when the host lacks it (the pids
// limit then falls back to RLIMIT_NPROC), each missing one reported as a
// progress line: what the linux backend does for a call with
// sandbox.Spec.BestEffort. Without it such a build is refused.
func WithBestEffort(ctx context.Context) context.Context {
	return context.WithValue(ctx, bestEffortKey{}, true)
}

func bestEffort(ctx context.Context) bool {
	on, _ := ctx.Value(bestEffortKey{}).(bool)
	return on
}
