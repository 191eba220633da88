// Package pyinterp finds the real Python interpreter skills run on.
//
// A name on PATH may be a launcher rather than an interpreter: pyenv's shims
// are shell scripts that re-exec the selected version. Backends need the real
// binary (a jail mounts exactly it and its prefix), so Resolve asks the
// interpreter itself for sys.executable and its installation prefixes.
//
// # Persistent cache
//
// Asking costs a Python start and, through a pyenv shim, pyenv's bash on
// top, in every CLI invocation (docs/PERFORMANCE.md). So answers are kept
// in the cache folder's pyinterp.json (internal/userdir; mode 0600,
// replaced atomically, at most 16 entries) and reused only while everything they depend on is
// unchanged. A file is identified by device, inode, mode, owner, size, mtime
// and ctime (fileID); a path that does not exist is recorded as absent.
//
// An entry's key is a hash of what decides which interpreter runs, computed
// before running anything: the name asked for, the path exec.LookPath finds
// and that file (link and target), and, when that file is a pyenv shim
// (recognised byte for byte against pyenv-rehash's template), what pyenv
// consults (pyenvKey): HOME, PYENV_ROOT and PYENV_VERSION (the probe gets
// no other variables), pyenv's code and hooks, the installed versions, the
// PATH directories, and the `.python-version` pyenv would pick from the
// working directory and $PYENV_ROOT/version, by content. pyenv is a program
// and its choice could in principle depend on anything its hooks read; the
// key covers what pyenv's own scripts and the standard plugins read. Any
// other script on PATH is a launcher that could run anything and is never
// cached, nor is a binary that turns out to start another interpreter
// (Python reports another sys.executable than the path run, as behind a
// version manager's compiled shim), nor are version names that are paths.
//
// An entry's value is the Interpreter and the files its facts were derived
// from, with their identities: the path Python was started by and its
// pyvenv.cfg candidates, the real executable, the prefixes, every sys.path
// and site directory (existing or not) and the .pth and sitecustomize files
// in them. Neither the folder holding the interpreter (any package install
// adds programs to /usr/bin) nor a package added to a site directory
// invalidates an entry: only the landmarks Python's start looks for beside
// its executable (pyvenv.cfg, pybuilddir.txt, a ._pth file) and a site
// directory's .pth and sitecustomize names count. A hit re-checks every
// one and re-reads the ELF linkage; any difference is a miss, and a miss
// runs the probe and replaces the entry.
// Nothing is stored when the key changed while the probe ran, or when a file
// involved changed less than two seconds before the resolution started (it
// could change again within one timestamp tick and keep its identity).
//
// The cache is read only when it belongs to the user running skillbox and
// no one else can write it: whoever could write it could equally change the
// shim, ~/.pyenv/version or PATH, so it grants nothing re-resolving would
// not. A missing, foreign, oversized or malformed file is ignored and
// replaced at the next miss.
//
// Set SKILLBOX_NO_INTERP_CACHE=1 to neither read nor write it (to debug a
// resolution, or where a pyenv hook decides from state the key does not
// cover); deleting the file is always safe.
package pyinterp

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
)

// EnvVar names the variable that overrides the default interpreter.
const EnvVar = "SKILLBOX_PYTHON"

// Interpreter describes a resolved Python.
type Interpreter struct {
	// Executable is the real interpreter binary (symlinks resolved).
	Executable string `json:"executable"`
	// Command is what backends run: Executable, or for a virtual
	// environment the environment's own python (symlinks kept, next to its
	// pyvenv.cfg), without which its site-packages are not on sys.path.
	// A per-skill environment's (InEnvironment) is its base's Executable.
	Command string `json:"command"`
	// Environment, for a per-skill environment's interpreter
	// (InEnvironment), is its bin/python: the interpreter's
	// sys.executable once site is processed, never what runs.
	Environment string `json:"-"`
	// Version is sys.version_info as "3.11.2".
	Version string `json:"version"`
	// Prefix and BasePrefix are sys.prefix and sys.base_prefix.
	Prefix     string `json:"prefix"`
	BasePrefix string `json:"base_prefix"`
	// Paths are the directories on sys.path (stdlib, lib-dynload,
	// site-packages) that exist, symlinks resolved.
	Paths []string `json:"paths"`
	// Loader is the ELF interpreter (ld.so) named by the binary's
	// PT_INTERP, and Libs are the resolved paths of its DT_NEEDED
	// libraries; both empty when the binary is not ELF.
	Loader string   `json:"-"`
	Libs   []string `json:"-"`
}

// probe prints the interpreter's facts as JSON. -I keeps PYTHON* variables
// and the user's site-packages out; -S is not used because Debian adds its
// dist-packages (where python3-yaml lives) through site. "invoked" and
// "watch" and "sites" are for the persistent cache (probeResult).
const probe = `import sys, json, os, site
paths = [os.path.realpath(p) for p in sys.path if p and os.path.isdir(p)]
try:
    sites = list(site.getsitepackages())
except Exception:
    sites = []
print(json.dumps({"executable": os.path.realpath(sys.executable),
  "version": "%d.%d.%d" % sys.version_info[:3],
  "prefix": sys.prefix, "base_prefix": sys.base_prefix, "paths": paths,
  "invoked": sys.executable, "watch": [p for p in sys.path + sites if p],
  "sites": [p for p in sites + [os.path.realpath(s) for s in sites] if p]}))`

// childPATH is the PATH the probe runs with (pyenv's shim needs one).
const childPATH = "/usr/local/bin:/usr/bin:/bin"

var (
	cacheMu sync.Mutex
	cache   = map[string]*Interpreter{}
)

// Default is the interpreter name to resolve: $SKILLBOX_PYTHON, else python3.
func Default() string {
	if p := os.Getenv(EnvVar); p != "" {
		return p
	}
	return "python3"
}

// Resolve finds name (a path or a command on PATH; empty means Default())
// and asks it for its real executable and paths. Results are cached per name
// in memory and, keyed by what they depend on, on disk (see the package
// comment). A missing or broken interpreter is errdefs.Unavailable.
func Resolve(ctx context.Context, name string) (*Interpreter, error) {
	return resolve(ctx, name, defaultTuning)
}

// resolve is Resolve with the disk cache's tuning.
func resolve(ctx context.Context, name string, tn tuning) (*Interpreter, error) {
	if name == "" {
		name = Default()
	}
	cacheMu.Lock()
	if in, ok := cache[name]; ok {
		cacheMu.Unlock()
		return in, nil
	}
	cacheMu.Unlock()

	path, err := exec.LookPath(name)
	if err != nil {
		return nil, errdefs.New(errdefs.Unavailable, "python interpreter %q not found (set %s or install python3): %v", name, EnvVar, err)
	}
	in, err := resolvePath(ctx, name, path, tn)
	if err != nil {
		return nil, err
	}
	cacheMu.Lock()
	cache[name] = in
	cacheMu.Unlock()
	return in, nil
}

// resolvePath answers from the persistent cache when it holds a valid
// entry for what name and path depend on, and otherwise runs the probe and
// stores its answer if nothing it depends on changed meanwhile.
func resolvePath(ctx context.Context, name, path string, tn tuning) (*Interpreter, error) {
	start := time.Now()
	file := cachePath()
	var key, direct string
	if file != "" {
		key, _, direct = lookupKey(name, path, tn.timeResolution)
		if key != "" {
			if in := cacheLookup(file, key, tn.timeResolution); in != nil {
				return in, nil
			}
		}
	}
	r, err := runProbe(ctx, path)
	if err != nil {
		return nil, err
	}
	in := r.Interpreter
	in.Command = command(r)
	in.Loader, in.Libs = linkage(in.Executable)
	if key != "" {
		// What the probe saw must be what the key describes: if the key
		// changed while it ran, its answer is not stored (cacheStore also
		// refuses files changed since shortly before start).
		if again, newest, _ := lookupKey(name, path, tn.timeResolution); again == key {
			cacheStore(file, key, direct, r, start.Add(-tn.racyWindow), newest, tn.timeResolution)
		}
	}
	return &in, nil
}

// runProbe runs the interpreter at path once with the probe.
func runProbe(ctx context.Context, path string) (*probeResult, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "-I", "-c", probe)
	cmd.Env = []string{"PATH=" + childPATH, "LANG=C.UTF-8"}
	if home := os.Getenv("HOME"); home != "" {
		// pyenv's shim needs HOME to find its versions.
		cmd.Env = append(cmd.Env, "HOME="+home)
	}
	for _, k := range []string{"PYENV_ROOT", "PYENV_VERSION"} {
		if v := os.Getenv(k); v != "" {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	out, err := cmd.Output()
	if err != nil {
		return nil, errdefs.New(errdefs.Unavailable, "python interpreter %s does not run: %v", path, err)
	}
	var r probeResult
	if err := json.Unmarshal(out, &r); err != nil || r.Executable == "" {
		return nil, errdefs.New(errdefs.Unavailable, "python interpreter %s: unexpected probe output %q", path, out)
	}
	if !filepath.IsAbs(r.Executable) {
		return nil, errdefs.New(errdefs.Unavailable, "python interpreter %s reports a relative executable %q", path, r.Executable)
	}
	return &r, nil
}

// command is what to run for the probed interpreter: a virtual
// environment's own python (the path it was invoked by), else the real
// binary.
func command(r *probeResult) string {
	if r.Prefix != r.BasePrefix && filepath.IsAbs(r.Invoked) {
		return filepath.Clean(r.Invoked)
	}
	return r.Executable
}

// String describes the interpreter for messages.
func (in *Interpreter) String() string {
	return fmt.Sprintf("%s (Python %s)", in.Command, in.Version)
}
