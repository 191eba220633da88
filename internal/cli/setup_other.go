//go:build !unix

package cli

import (
	"context"

	"github.com/skillbox-dev/skillbox/errdefs"
)

// cmdSetup: the pyodide backend, the only one that needs setting up, is
// built for unix hosts only.
func cmdSetup(ctx context.Context, c *cmdContext, args []string) error {
	return errdefs.New(errdefs.Unsupported, "skillbox setup: no backend needs setting up on this platform (pyodide is built for unix hosts)")
}
