package image

import (
	"context"
	"io"
)

type progressKey struct{}

// WithProgress returns ctx carrying w, where a backend that pulls and
// unpacks an image on first use (Cache.Progress) writes its progress
// lines; the CLI's run gives its stderr.
func WithProgress(ctx context.Context, w io.Writer) context.Context {
	if w == nil {
		return ctx
	}
	return context.WithValue(ctx, progressKey{}, w)
}

// ProgressFrom returns the writer WithProgress put in ctx, or nil.
func ProgressFrom(ctx context.Context) io.Writer {
	w, _ := ctx.Value(progressKey{}).(io.Writer)
	return w
}
