package skillbox_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox"
	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/skill"
)

// deepDir is a working directory six levels under a temporary folder, so
// that the walk up for ./skills and .skillware.yaml stays inside it.
func deepDir(t *testing.T) string {
	t.Helper()
	d := filepath.Join(t.TempDir(), "a", "b", "c", "d", "e", "cwd")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// isolateSkillware points every variable the default roots read at
// temporary folders.
func isolateSkillware(t *testing.T) (cwd string) {
	t.Helper()
	cwd = deepDir(t)
	t.Chdir(cwd)
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	t.Setenv(skill.ConfigDirEnv, "")
	t.Setenv(skill.SkillPathEnv, "")
	return cwd
}

func TestRuntimeRootWarnings(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "test", "counter")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "manifest.yaml"), []byte("name: counter\nversion: \"1\"\ndescription: counts\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "skill.py"), []byte(counterSkill), 0o644)
	category := filepath.Join(root, "test")
	found, err := skill.FindRoots(skill.RootsEnv{
		Getenv: func(k string) string {
			if k == skill.SkillPathEnv {
				return root + string(os.PathListSeparator) + category
			}
			return ""
		},
		Cwd: deepDir(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := skillbox.New(skillbox.WithFoundRoots(found), skillbox.WithCacheDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	want := "SKILLWARE_SKILL_PATH entry " + category + " is a category folder"
	if ws := rt.RootWarnings(); len(ws) != 1 || !strings.HasPrefix(ws[0], want) {
		t.Fatalf("RootWarnings %q, want %q...", ws, want)
	}
	s, err := rt.Resolve("test/counter")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.Warnings, rt.RootWarnings()) {
		t.Errorf("skill warnings %q, want the root warnings", s.Warnings)
	}
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed; the call is not checked")
	}
	res, err := rt.Call(context.Background(), "test/counter", nil, skillbox.CallOptions{Backend: "process", TrustRemoteCode: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(res.Warnings, func(w string) bool { return strings.HasPrefix(w, want) }) {
		t.Errorf("Result.Warnings %q, want %q...", res.Warnings, want)
	}
}

func TestNewDefaultRootsReadSkillwareConfig(t *testing.T) {
	cwd := isolateSkillware(t)
	ext := t.TempDir()
	cfg := filepath.Join(cwd, skill.ProjectConfigFile)
	os.WriteFile(cfg, []byte("paths:\n  external: ["+ext+"]\nresolution:\n  order: [external, project]\n"), 0o644)
	rt, err := skillbox.New(skillbox.WithCacheDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	roots := rt.Roots()
	rt.Close()
	if len(roots) != 2 || roots[0] != (skill.Root{Path: ext, Tier: skill.TierExternal}) || roots[1].Tier != skill.TierBundled {
		t.Errorf("roots %v, want %s (external) then bundled", roots, ext)
	}

	// A wrong file stops New, naming FILE:LINE.
	os.WriteFile(cfg, []byte("paths:\n  external: "+ext+"\n"), 0o644)
	_, err = skillbox.New(skillbox.WithCacheDir(t.TempDir()))
	if errdefs.KindOf(err) != errdefs.Invalid || err == nil || !strings.Contains(err.Error(), cfg+":2: paths.external") {
		t.Errorf("New: %v, want invalid naming %s:2", err, cfg)
	}
}
