//go:build unix

package cli

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/sandbox/pyodide"
)

// cmdSetup installs what a backend needs beyond the skillbox binary.
// Today only the pyodide backend has such a step: Deno and Pyodide from the
// npm registry (pinned, integrity-checked) and its memory snapshot.
func cmdSetup(ctx context.Context, c *cmdContext, args []string) error {
	fs := newFlags(c, "setup", "pyodide [--cache-dir DIR]")
	cache := fs.String("cache-dir", "", "install folder (default $XDG_CACHE_HOME/skillbox/pyodide)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 1, "the backend to set up (pyodide)"); err != nil {
		return err
	}
	if pos[0] != pyodide.Name {
		return errdefs.New(errdefs.Invalid, "backend %q needs no setup (only pyodide does)", pos[0])
	}
	dir := *cache
	if dir == "" {
		base, err := c.cacheDir()
		if err != nil {
			return err
		}
		dir = filepath.Join(base, "pyodide")
	}
	rt, err := pyodide.Setup(ctx, dir, c.stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "pyodide backend ready: %s\n", rt)
	return nil
}
