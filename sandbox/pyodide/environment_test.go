//go:build unix

package pyodide_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/sandbox/sandboxtest"
)

// envUser imports its requirement (from the environment), reads its data
// through importlib.metadata, and reports sys.path's order.
const envUser = `import sys
import importlib.metadata as md
import alpha
from skillware.core.base_skill import BaseSkill


class S(BaseSkill):
    def execute(self, params):
        return {"greet": alpha.greet(params["who"]), "file": alpha.__file__, "version": md.version("alpha"),
                "pth": getattr(sys, "_alpha_pth", None), "path": sys.path}
`

// TestEnvironmentLoaded: a skill opened with an environment (a folder with
// site-packages, as skillenv builds for Pyodide) imports its packages from
// /env/site-packages, a site directory after the standard library (its .pth
// files processed), and its requirement is met; the host folder is never
// read by Deno (it is outside every --allow-read: the files come in the
// setup frame).
func TestEnvironmentLoaded(t *testing.T) {
	d := driver(t)
	env := filepath.Join(t.TempDir(), "env")
	site := filepath.Join(env, "site-packages")
	for p, body := range map[string]string{
		"alpha/__init__.py":            "def greet(w):\n    return 'hello ' + w\n",
		"alpha-1.2.dist-info/METADATA": "Metadata-Version: 2.1\nName: alpha\nVersion: 1.2\n",
		"alpha-1.2.dist-info/RECORD":   "",
		"alpha.pth":                    "import sys; sys._alpha_pth = True\n",
		"alpha/__pycache__/junk.pyc":   "not bytecode",
	} {
		os.MkdirAll(filepath.Dir(filepath.Join(site, p)), 0o755)
		if err := os.WriteFile(filepath.Join(site, p), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(t.TempDir(), "envuser")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "skill.py"), []byte(envUser), 0o644)
	opts := sandboxtest.OptionsFromProbe(context.Background(), d)
	spec := sandboxtest.SpecFor(dir, opts)
	spec.Requirements = []string{"alpha>=1"}
	spec.Environment = &sandbox.Environment{Key: "sha256:" + "ab", Dir: env, Base: "/usr/bin/python3"}
	// Generous: a worker's start is bounded by the call timeout plus an
	// allowance, and this machine may be loaded.
	spec.Limits.Timeout = time.Minute
	begin := time.Now()
	sb := sandboxtest.Open(t, d, spec)
	t.Logf("open: %v", time.Since(begin))
	defer sb.Close()
	for i := 0; i < 2; i++ { // the first worker and its replacement
		// A generous bound: the second call may start its own worker on a
		// loaded machine.
		begin := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		res, err := sb.Call(ctx, sandbox.Request{Params: json.RawMessage(`{"who": "pyodide"}`)})
		cancel()
		t.Logf("call %d: %v", i, time.Since(begin))
		var out struct {
			Greet, File, Version string
			Pth                  bool
			Path                 []string
		}
		sandboxtest.MustResult(t, res, err, &out)
		if out.Greet != "hello pyodide" || out.File != "/env/site-packages/alpha/__init__.py" || out.Version != "1.2" || !out.Pth {
			t.Errorf("call %d: %+v; want alpha 1.2 from /env/site-packages, its .pth processed", i, out)
		}
		stdlib, site := slices.IndexFunc(out.Path, func(p string) bool { return filepath.Ext(p) == ".zip" }), slices.Index(out.Path, "/env/site-packages")
		if stdlib < 0 || site < stdlib {
			t.Errorf("call %d: sys.path %q: want /env/site-packages after the standard library", i, out.Path)
		}
	}

	// Without the environment, the requirement is unmet: unavailable.
	spec.Environment = nil
	if sb, err := d.Open(context.Background(), spec); err == nil {
		sb.Close()
		t.Fatal("Open succeeded without the environment that has alpha")
	} else {
		sandboxtest.AssertKind(t, err, errdefs.Unavailable)
	}
}
