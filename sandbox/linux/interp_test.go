//go:build linux

package linux

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/internal/pyinterp"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// TestInterpreters runs a skill under the default interpreter (python3 on
// PATH: pyenv's here, below /root, which is mode 0700 on the host) and
// under Debian's /usr/bin/python3, in both exec modes: the jail runs exactly
// the binary pyinterp resolves (the one the process backend runs), yaml
// imports, and nothing of the host beyond the interpreter is visible.
func TestInterpreters(t *testing.T) {
	for _, python := range []string{"", "/usr/bin/python3"} {
		if python != "" {
			if _, err := exec.LookPath(python); err != nil {
				t.Logf("%s not found", python)
				continue
			}
		}
		want, err := pyinterp.Resolve(context.Background(), python)
		if err != nil {
			t.Fatal(err)
		}
		for _, mode := range execModes {
			t.Run(strings.ReplaceAll(want.Executable, "/", "_")+"/"+mode, func(t *testing.T) {
				sb := openBox(t, Options{Exec: mode}, sandbox.Spec{Python: python, Requirements: []string{"pyyaml"},
					BundleDir: bundle(t, `        import yaml
        def ls(p):
            try:
                return sorted(os.listdir(p))
            except OSError as e:
                return "ERR " + type(e).__name__
        return {"exe": os.path.realpath(sys.executable), "prefix": sys.base_prefix, "yaml": yaml.__file__,
                "root": ls("/"), "home": ls("/root"), "usr": ls("/usr")}`)})
				res, err := call(t, sb, nil)
				if err != nil {
					t.Fatal(err)
				}
				v := value(t, res)
				t.Logf("%v", v)
				if v["exe"] != want.Executable || v["prefix"] != want.BasePrefix {
					t.Errorf("jail runs %v (prefix %v), want %s (prefix %s)", v["exe"], v["prefix"], want.Executable, want.BasePrefix)
				}
				if strings.HasPrefix(want.BasePrefix, "/root/") {
					// Landlock denies listing it; were it allowed, only
					// the path to the interpreter would be there.
					if home, _ := v["home"].([]any); v["home"] != "ERR PermissionError" && (len(home) != 1 || home[0] != ".pyenv") {
						t.Errorf("/root in the jail holds %v, want only the interpreter's path", v["home"])
					}
				} else if v["home"] != "ERR FileNotFoundError" {
					t.Errorf("/root in the jail: %v, want absent", v["home"])
				}
			})
		}
	}
}

// TestVirtualEnv: with a virtual environment's python as the interpreter,
// the jail runs that python (not the base binary it links to), so the
// environment's own site-packages are importable, in both exec modes.
func TestVirtualEnv(t *testing.T) {
	venv := filepath.Join(t.TempDir(), "venv")
	if out, err := exec.Command("/usr/bin/python3", "-m", "venv", "--without-pip", venv).CombinedOutput(); err != nil {
		t.Fatalf("python3 -m venv (scripts/setup installs python3-venv): %v\n%s", err, out)
	}
	os.Chmod(filepath.Dir(venv), 0o755)
	sites, _ := filepath.Glob(filepath.Join(venv, "lib", "python3*", "site-packages"))
	if len(sites) != 1 {
		t.Fatalf("venv site-packages: %v", sites)
	}
	os.WriteFile(filepath.Join(sites[0], "venvonly.py"), []byte("VALUE = 'from the venv'\n"), 0o644)
	python := filepath.Join(venv, "bin", "python")
	for _, mode := range execModes {
		t.Run(mode, func(t *testing.T) {
			sb := openBox(t, Options{Exec: mode}, sandbox.Spec{Python: python, Requirements: []string{"venvonly"},
				BundleDir: bundle(t, `        import venvonly
        return {"value": venvonly.VALUE, "prefix": sys.prefix, "exe": sys.executable}`)})
			res, err := call(t, sb, nil)
			if err != nil {
				t.Fatal(err)
			}
			v := value(t, res)
			if v["value"] != "from the venv" || v["prefix"] != venv || v["exe"] != python {
				t.Errorf("in the jail: %v; want venvonly from %s run as %s", v, venv, python)
			}
		})
	}
}
