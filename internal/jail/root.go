package jail

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/skillbox-dev/skillbox/internal/pyinterp"
	"github.com/skillbox-dev/skillbox/internal/worker"
)

// Root is a root provider: what a jail's root holds besides the jail's own
// folders (OwnDirs), and the program that runs in it. New asks it once;
// every jail started from the Jail shares the answer.
type Root interface {
	// Binds lists the host paths (files or folders) the program needs,
	// shown read-only at the same paths in the jail; symlinks on the way
	// are recreated, so compiled-in paths keep working.
	Binds() ([]string, error)
	// Program is the absolute path, in the jail, of the binary exec'd as
	// the jail's pid 1.
	Program() string
	// Env is the program's whole environment given the granted variables
	// (the Spec's and the egress proxy's), which cannot override what the
	// root itself sets.
	Env(granted map[string]string) []string
}

// HostPython is the root of the host's Python interpreter: its real
// binary, ld.so, its shared libraries, its prefix (when not a shared one
// such as /usr), its sys.path and /etc/ld.so.cache (pyinterp's
// HostPaths). The environment is the worker's (worker.Environ, HOME and
// TMPDIR at ScratchDir).
type HostPython struct {
	Interp *pyinterp.Interpreter
}

// Binds returns the interpreter's host paths.
func (r HostPython) Binds() ([]string, error) { return r.Interp.HostPaths(), nil }

// Program returns the interpreter backends run (a virtual environment's
// own python for a venv).
func (r HostPython) Program() string { return r.Interp.Command }

// Env returns worker.Environ with HOME and TMPDIR at ScratchDir, and
// malloc's settings for a process forked per call
// (worker.WithMallocTunables).
func (r HostPython) Env(granted map[string]string) []string {
	return worker.WithMallocTunables(worker.Environ(ScratchDir, granted))
}

// Binary is the root of one host binary: the binary and what its ELF
// headers need (loader, libraries, /etc/ld.so.cache), plus further
// read-only paths (data the program reads), with a fixed environment.
type Binary struct {
	// Path is the binary's absolute host path, the same in the jail.
	Path string
	// ReadOnly are further host paths (files or folders) bound read-only
	// at the same paths; none may be / or cover the jail's own folders.
	ReadOnly []string
	// Environ is the program's own environment (KEY=value); a granted
	// variable of the same name does not replace a value set here.
	Environ []string
}

// Binds returns Path, its ELF dependencies, /etc/ld.so.cache (when the
// host has one) and ReadOnly.
func (r Binary) Binds() ([]string, error) {
	if !filepath.IsAbs(r.Path) {
		return nil, fmt.Errorf("jail: program %q is not an absolute path", r.Path)
	}
	for _, p := range r.ReadOnly {
		if !filepath.IsAbs(p) || filepath.Clean(p) == "/" || under(p, OwnDirs()) {
			return nil, fmt.Errorf("jail: read-only path %q must be absolute, not / and outside the jail's own folders", p)
		}
	}
	paths := append([]string{r.Path}, pyinterp.ELFDeps(r.Path)...)
	if _, err := os.Stat("/etc/ld.so.cache"); err == nil {
		paths = append(paths, "/etc/ld.so.cache")
	}
	return append(paths, r.ReadOnly...), nil
}

// Program returns Path.
func (r Binary) Program() string { return r.Path }

// Env returns Environ plus the granted variables it does not set, sorted
// by name.
func (r Binary) Env(granted map[string]string) []string {
	env := maps.Clone(granted)
	if env == nil {
		env = map[string]string{}
	}
	for _, kv := range r.Environ {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	out := make([]string, 0, len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}
