package skillbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox"
	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/jail"
	"github.com/skillbox-dev/skillbox/internal/skillenv"
	"github.com/skillbox-dev/skillbox/internal/skillenv/envtest"
	"github.com/skillbox-dev/skillbox/skill"
)

// TestPyodideEnvironment: on the pyodide backend a skill that declares
// requirements runs on its own environment, built like the linux
// backend's (pip in a jail, from the loopback index) but for Pyodide's
// Python with pure-Python wheels only, under another key than the linux
// environment of the same requirements, and loaded into Pyodide's memory
// (/env/site-packages). A requirement with only a compiled wheel is
// unavailable naming it and the wheel's tags.
func TestPyodideEnvironment(t *testing.T) {
	requireBackend(t, "pyodide")
	if os.Geteuid() != 0 {
		t.Skip("needs root: environments are built in a jail")
	}
	if err := jail.Usable(); err != nil {
		t.Skipf("host cannot build jails: %v", err)
	}
	if _, err := skillenv.PipWheel(); err != nil {
		t.Skip(err)
	}
	wheels := t.TempDir()
	envtest.WheelOf(t, wheels, "alpha", "1.0", map[string]string{"alpha/__init__.py": "VERSION = '1.0'\n"})
	envtest.TaggedWheel(t, wheels, "fastlib", "2.0", "cp314-cp314-pyodide_2026_0_wasm32", map[string]string{"fastlib.py": "VERSION = '2.0'\n"})
	envtest.TaggedWheel(t, wheels, "fastlib", "2.0", "cp311-cp311-manylinux_2_17_x86_64", map[string]string{"fastlib.py": "VERSION = '2.0'\n"})
	url, _ := envtest.Index(t, wheels)
	root, cache := t.TempDir(), t.TempDir()
	for name, req := range map[string]string{"uses": "alpha", "compiled": "fastlib"} {
		dir := filepath.Join(root, "test", name)
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "manifest.yaml"), []byte("name: "+name+"\nversion: \"1\"\ndescription: d\nrequirements: ["+req+"]\n"), 0o644)
		os.WriteFile(filepath.Join(dir, "skill.py"), []byte("import "+req+`
from skillware.core.base_skill import BaseSkill


class S(BaseSkill):
    def execute(self, params):
        return {"version": `+req+`.VERSION, "file": `+req+`.__file__}
`), 0o644)
	}
	var lines []string
	rt, err := skillbox.New(skillbox.WithRoots(skill.Root{Path: root, Tier: skill.TierProject}),
		skillbox.WithCacheDir(cache), pipEnv(url), skillbox.WithEnvProgress(func(l string) { lines = append(lines, l) }))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	ctx := context.Background()

	res, err := rt.Call(ctx, "test/uses", nil, skillbox.CallOptions{Backend: "pyodide"})
	if err != nil {
		t.Fatalf("%v\n%s", err, strings.Join(lines, "\n"))
	}
	var out struct{ Version, File string }
	if err := json.Unmarshal(res.Value, &out); err != nil {
		t.Fatal(err)
	}
	if out.Version != "1.0" || out.File != "/env/site-packages/alpha/__init__.py" {
		t.Errorf("the skill imported %+v, want alpha 1.0 from /env/site-packages", out)
	}
	st, err := rt.Environment(ctx, "test/uses", "pyodide")
	if err != nil || !st.RunsEnvironments || !st.Built || !strings.HasPrefix(st.Python, "Pyodide ") || st.BuildPython == "" ||
		strings.Join(st.Resolved, " ") != "alpha==1.0" {
		t.Errorf("pyodide environment status %+v, %v", st, err)
	}
	if lin, err := rt.Environment(ctx, "test/uses", "linux"); err == nil && lin.Key == st.Key {
		t.Errorf("the linux and the pyodide environments of the same requirements share key %s", st.Key)
	}

	_, err = rt.Call(ctx, "test/compiled", nil, skillbox.CallOptions{Backend: "pyodide"})
	for _, want := range []string{"fastlib", "runs only pure-Python wheels", "fastlib-2.0-cp314-cp314-pyodide_2026_0_wasm32.whl (tags cp314-cp314-pyodide_2026_0_wasm32)",
		"(tags cp311-cp311-manylinux_2_17_x86_64)"} {
		if !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v; want unavailable saying %q", err, want)
		}
	}
}
