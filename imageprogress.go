package skillbox

import (
	"context"
	"strings"

	"github.com/skillbox-dev/skillbox/internal/image"
)

// WithImageProgress sets where the progress of a backend's pull of a
// container skill's image on first use goes, line by line ("image:
// pulling REF (DIGEST): layers of SIZE", "image: layer 1/3 …", "image:
// unpacked …"), and of its build on first use (CallOptions.BuildImages:
// "image: building …", then the builder's "build: …" lines); nothing is
// said of an image already unpacked. The CLI's run and serve print to
// stderr; nil discards.
func WithImageProgress(f func(line string)) Option { return func(c *config) { c.imageProgress = f } }

// imageProgressCtx is ctx carrying the Runtime's image progress for
// Driver.Open (image.WithProgress), if it has one.
func (r *Runtime) imageProgressCtx(ctx context.Context) context.Context {
	if f := r.cfg.imageProgress; f != nil {
		return image.WithProgress(ctx, lineFunc(f))
	}
	return ctx
}

// lineFunc is an io.Writer that calls itself on every non-empty line of
// each write (the image cache writes whole lines).
type lineFunc func(string)

func (f lineFunc) Write(p []byte) (int, error) {
	for l := range strings.SplitSeq(string(p), "\n") {
		if l = strings.TrimRight(l, "\r"); l != "" {
			f(l)
		}
	}
	return len(p), nil
}
