// Package pyinterp finds the real Python interpreter skills run on.
//
// A name on PATH may be a launcher rather than an interpreter: pyenv's shims
// are shell scripts that re-exec the selected version. Backends need the real
// binary (a jail mounts exactly it and its prefix), so Resolve asks the
// interpreter itself for sys.executable and its installation prefixes.
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
// dist-packages (where python3-yaml lives) through site.
const probe = `import sys, json, os
paths = [os.path.realpath(p) for p in sys.path if p and os.path.isdir(p)]
print(json.dumps({"executable": os.path.realpath(sys.executable),
  "version": "%d.%d.%d" % sys.version_info[:3],
  "prefix": sys.prefix, "base_prefix": sys.base_prefix, "paths": paths}))`

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
// and asks it for its real executable and paths. Results are cached per name.
// A missing or broken interpreter is errdefs.Unavailable.
func Resolve(ctx context.Context, name string) (*Interpreter, error) {
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
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "-I", "-c", probe)
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"}
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
	var in Interpreter
	if err := json.Unmarshal(out, &in); err != nil || in.Executable == "" {
		return nil, errdefs.New(errdefs.Unavailable, "python interpreter %s: unexpected probe output %q", path, out)
	}
	if !filepath.IsAbs(in.Executable) {
		return nil, errdefs.New(errdefs.Unavailable, "python interpreter %s reports a relative executable %q", path, in.Executable)
	}
	in.Loader, in.Libs = linkage(in.Executable)
	cacheMu.Lock()
	cache[name] = &in
	cacheMu.Unlock()
	return &in, nil
}

// String describes the interpreter for messages.
func (in *Interpreter) String() string {
	return fmt.Sprintf("%s (Python %s)", in.Executable, in.Version)
}
