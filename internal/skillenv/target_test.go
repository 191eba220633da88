package skillenv

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/skillenv/envtest"
)

// pyodide is a target as the pyodide backend names one.
var pyodide = &Target{Name: "Pyodide 314.0.7", PythonVersion: "3.14.2"}

// An environment for a target takes another key than the same request
// for the building interpreter, whatever Sdists says (never sdists).
func TestKeyTarget(t *testing.T) {
	base := Request{Python: "/usr/bin/python3.11", PythonVersion: "3.11.2", Requirements: []string{"a"}}
	k0, _ := base.Key()
	tr := base
	tr.Target = pyodide
	k1, err := tr.Key()
	if err != nil || k1 == k0 {
		t.Fatalf("target key %q (%v), linux key %q: want another key", k1, err, k0)
	}
	tr.Sdists = true
	if k, _ := tr.Key(); k != k1 {
		t.Error("Sdists changes a target's key, but a target never takes sdists")
	}
	other := *pyodide
	other.PythonVersion = "3.13.2"
	tr.Target = &other
	if k, _ := tr.Key(); k == k1 {
		t.Error("another target Python version gives the same key")
	}
	tr.Target = &Target{Name: "x", PythonVersion: "three"}
	if _, err := tr.Key(); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("a target version that is not X.Y: %v", err)
	}
}

// A build for a target installs pure-Python wheels only, into
// site-packages (no interpreter, no bytecode of the building one); a
// requirement with only compiled wheels or an sdist fails naming the
// files and their tags; a wheel tagged pure that holds compiled code
// fails naming it.
func TestEnsureTarget(t *testing.T) {
	wheels := t.TempDir()
	envtest.Wheel(t, wheels, "alpha", "1.0", "VERSION = '1.0'\nimport beta\n", "beta>=2")
	envtest.TaggedWheel(t, wheels, "beta", "2.0", "py2.py3-none-any", map[string]string{"beta.py": "VERSION = '2.0'\n"})
	// Both a compiled and a pure wheel: the pure one is taken.
	envtest.TaggedWheel(t, wheels, "both", "1.0", "cp311-cp311-manylinux_2_17_x86_64", map[string]string{"both.py": "KIND = 'compiled'\n"})
	envtest.TaggedWheel(t, wheels, "both", "1.0", "py3-none-any", map[string]string{"both.py": "KIND = 'pure'\n"})
	envtest.TaggedWheel(t, wheels, "fastlib", "1.0", "cp311-cp311-manylinux_2_17_x86_64", map[string]string{"fastlib.py": ""})
	envtest.Sdist(t, wheels, "fastlib", "1.0", map[string]string{"setup.py": "raise SystemExit('never run')\n"})
	envtest.Sdist(t, wheels, "oldlib", "0.1", map[string]string{"setup.py": "raise SystemExit('never run')\n"})
	envtest.WheelOf(t, wheels, "shady", "1.0", map[string]string{"shady/__init__.py": "", "shady/_speed.cpython-311-x86_64-linux-gnu.so": "\x7fELF"})
	url, _ := envtest.Index(t, wheels)
	idx, err := IndexFromEnv(func(k string) string {
		return map[string]string{"PIP_INDEX_URL": url, "PIP_CONFIG_FILE": os.DevNull}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	c := &Cache{Dir: filepath.Join(t.TempDir(), "envs"), Builder: &hostBuilder{}, PipWheel: needPip(t)}
	req := Request{Python: "/usr/bin/python3", PythonVersion: "3", Index: idx, Target: pyodide, Sdists: true}
	ensure := func(reqs ...string) (*Env, error) {
		r := req
		r.Requirements = reqs
		return c.Ensure(context.Background(), r, nil)
	}

	e, err := ensure("alpha", "both")
	if err != nil {
		t.Fatal(err)
	}
	got := []string{}
	for _, p := range e.Resolved {
		got = append(got, p.String())
		if !strings.HasPrefix(p.Hash, "sha256=") {
			t.Errorf("%s has no hash", p)
		}
	}
	if strings.Join(got, " ") != "alpha==1.0 beta==2.0 both==1.0" {
		t.Errorf("resolved %v", got)
	}
	site := filepath.Join(e.Dir, Site)
	if b, err := os.ReadFile(filepath.Join(site, "both.py")); err != nil || !strings.Contains(string(b), "pure") {
		t.Errorf("both.py: %q %v; want the pure wheel's", b, err)
	}
	for _, p := range []string{"alpha.py", "beta.py", "alpha-1.0.dist-info/METADATA"} {
		if _, err := os.Stat(filepath.Join(site, p)); err != nil {
			t.Errorf("site-packages lacks %s: %v", p, err)
		}
	}
	if e.Python != "" || e.Target == nil || *e.Target != *pyodide || e.Sdists {
		t.Errorf("env %+v: want no interpreter, the target recorded, no sdists", e)
	}
	if _, err := os.Stat(filepath.Join(e.Dir, "bin")); !os.IsNotExist(err) {
		t.Errorf("a target environment has bin/: %v", err)
	}
	if m, _ := filepath.Glob(filepath.Join(site, "__pycache__")); len(m) != 0 {
		t.Errorf("bytecode of the building interpreter: %v", m)
	}

	for reqs, want := range map[string][]string{
		"fastlib": {"Pyodide 314.0.7 runs only pure-Python wheels", "fastlib has no pure-Python wheel, only",
			"fastlib-1.0-cp311-cp311-manylinux_2_17_x86_64.whl (tags cp311-cp311-manylinux_2_17_x86_64)", "fastlib-1.0.tar.gz (a source distribution)"},
		"oldlib": {"oldlib has no pure-Python wheel, only oldlib-0.1.tar.gz (a source distribution)"},
		"shady":  {"Pyodide 314.0.7 runs only pure Python", "shady 1.0 holds compiled code (shady/_speed.cpython-311-x86_64-linux-gnu.so)"},
	} {
		_, err := ensure(reqs)
		t.Logf("%s: %v", reqs, err)
		if !errors.Is(err, errdefs.ErrUnavailable) {
			t.Errorf("%s: %v, want unavailable", reqs, err)
			continue
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v\nwant it to say %q", reqs, err, w)
			}
		}
	}
}
