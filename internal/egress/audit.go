package egress

import "context"

// auditKey is the context key of the audit sink.
type auditKey struct{}

// WithAudit returns ctx carrying audit, the sink for the egress events of
// the call ctx belongs to. The Runtime sets it on the context it passes to
// sandbox.Sandbox.Call; the sink is safe for concurrent use and may be
// called after Call has returned (allowed exchanges are reported when they
// end).
func WithAudit(ctx context.Context, audit func(Event)) context.Context {
	return context.WithValue(ctx, auditKey{}, audit)
}

// AuditFrom returns the sink WithAudit put in ctx, or a function that
// discards events. It never returns nil.
func AuditFrom(ctx context.Context) func(Event) {
	if f, ok := ctx.Value(auditKey{}).(func(Event)); ok && f != nil {
		return f
	}
	return func(Event) {}
}
