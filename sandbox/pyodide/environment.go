//go:build unix

package pyodide

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/pyinterp"
	"github.com/skillbox-dev/skillbox/internal/skillenv"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// Per-skill environments on Pyodide: Pyodide cannot run pip, so a host
// interpreter builds the skill's environment — in the same jail, from the
// same index, through the same lock and trust checks as the linux
// backend's (skillbox's environment.go, internal/skillenv) — for Pyodide's
// Python version, with only pure-Python wheels (skillenv.Target). The
// box copies its site-packages into each worker's in-memory file system
// (envDir) through the setup frame, as it does the bundle; Deno never
// reads the environment on the host.

// envDir is where a skill's environment's packages are in Pyodide's
// in-memory file system; the bootstrap adds it to sys.path as a site
// directory (its .pth files processed), after the standard library.
const envDir = "/env/site-packages"

// maxEnvironment caps the environment copied into every worker's memory.
const maxEnvironment = 128 << 20

// RunsEnvironments reports that the pyodide backend runs a skill on its
// own environment (Spec.Environment): pure-Python wheels built for
// Pyodide's Python by a host interpreter (EnvironmentTarget).
func (d *Driver) RunsEnvironments() bool { return true }

// EnvironmentBase returns the host interpreter that builds environments
// with pip for Pyodide (pyinterp's default: $SKILLBOX_PYTHON, else
// python3); calls never run on it.
func (d *Driver) EnvironmentBase(ctx context.Context, spec sandbox.Spec) (executable, version string, err error) {
	in, err := pyinterp.Resolve(ctx, "")
	if err != nil {
		return "", "", errdefs.Wrap(errdefs.Unavailable, err,
			"backend pyodide: the skill's requirements are installed by pip, run by a host Python ("+pyinterp.EnvVar+" names one)")
	}
	return in.Executable, in.Version, nil
}

// EnvironmentTarget returns Pyodide's name and Python version, read from
// the installed package's pyodide-lock.json (installing the runtime first
// when Options.Install allows, as Open does).
func (d *Driver) EnvironmentTarget(ctx context.Context) (name, version string, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pyVersion == "" {
		rt, err := d.installed(ctx)
		if err != nil {
			return "", "", err
		}
		if d.pyVersion, err = pythonVersion(rt); err != nil {
			return "", "", err
		}
	}
	return "Pyodide " + PyodideVersion, d.pyVersion, nil
}

// pythonVersion is the Python version of rt's Pyodide ("3.13.2"), from
// its pyodide-lock.json.
func pythonVersion(rt Runtime) (string, error) {
	p := filepath.Join(rt.Pyodide, "pyodide-lock.json")
	data, err := os.ReadFile(p)
	if err != nil {
		return "", errdefs.Wrap(errdefs.Unavailable, err, "backend pyodide: its Python version")
	}
	var lock struct {
		Info struct {
			Python string `json:"python"`
		} `json:"info"`
	}
	if err := json.Unmarshal(data, &lock); err != nil || strings.Count(lock.Info.Python, ".") < 1 {
		return "", errdefs.New(errdefs.Unavailable, "backend pyodide: %s names no Python version (info.python)", p)
	}
	return lock.Info.Python, nil
}

// readEnvironment adds the files of env's site-packages to the setup
// frame s (regular files; __pycache__ and links left out), under envDir.
func readEnvironment(s *setupFrame, env *sandbox.Environment) error {
	if env == nil {
		return nil
	}
	site := filepath.Join(env.Dir, skillenv.Site)
	if !filepath.IsAbs(env.Dir) || filepath.Clean(env.Dir) != env.Dir {
		return errdefs.New(errdefs.Invalid, "backend pyodide: environment folder %q is not an absolute, clean path", env.Dir)
	}
	if st, err := os.Stat(site); err != nil || !st.IsDir() {
		return errdefs.New(errdefs.Unavailable, "backend pyodide: environment %s has no %s folder (was it built for Pyodide?)", env.Key, skillenv.Site)
	}
	files, err := readTree(site, maxEnvironment, "environment "+env.Key)
	if err != nil {
		return err
	}
	s.Site, s.SiteFiles = envDir, files
	return nil
}
