//go:build unix

package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/sandbox/pyodide"
)

// setupNotNeeded is the error for `setup NAME` of any backend but pyodide:
// a backend of this binary needs no setup step; any other name is not a
// backend here at all.
func setupNotNeeded(name string) error {
	var names []string
	for _, r := range sandbox.List() {
		if r.Name == name {
			return errdefs.New(errdefs.Invalid, "backend %s has no setup step: it uses what the host already has ('skillbox doctor' shows what is missing); only pyodide is set up", name)
		}
		names = append(names, r.Name)
	}
	return errdefs.New(errdefs.Invalid, "there is no backend %q (this skillbox has %s); only pyodide is set up", name, strings.Join(names, ", "))
}

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
	if err := fs.wantArgs(pos, 1, "the backend to set up (pyodide)"); err != nil {
		return err
	}
	if pos[0] != pyodide.Name {
		return setupNotNeeded(pos[0])
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
