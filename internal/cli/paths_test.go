package cli

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// rootsHarness is a harness without Python (paths, list and doctor run no
// skill) whose working directory is six folders deep in a temporary one,
// so that the walk up for ./skills and .skillware.yaml never leaves it.
func rootsHarness(t *testing.T) *harness {
	t.Helper()
	dir := t.TempDir()
	project := filepath.Join(dir, "a", "b", "c", "d", "e", "project")
	if err := os.MkdirAll(project, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(project)
	return &harness{t: t, project: project, env: map[string]string{
		"HOME":           filepath.Join(dir, "home"),
		"XDG_CACHE_HOME": filepath.Join(dir, "cache"),
		"XDG_STATE_HOME": filepath.Join(dir, "state"),
	}}
}

// putSkill writes a minimal loadable skill at root/id.
func putSkill(t *testing.T, root, id string) {
	t.Helper()
	dir := filepath.Join(root, filepath.FromSlash(id))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	name := filepath.Base(dir)
	files := map[string]string{
		"manifest.yaml": "name: " + name + "\nversion: 1.0.0\ndescription: The " + name + " skill.\n",
		"skill.py":      "from skillware.core.base_skill import BaseSkill\n",
	}
	for f, c := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func TestPathsJSON(t *testing.T) {
	h := rootsHarness(t)
	base := filepath.Dir(h.project)
	ext, missing := filepath.Join(base, "ext"), filepath.Join(base, "missing")
	putSkill(t, ext, "cat/x")
	putSkill(t, filepath.Join(h.project, "skills"), "cat/y")
	h.env["SKILLWARE_SKILL_PATH"] = strings.Join([]string{ext, missing, filepath.Join(ext, "cat")}, string(os.PathListSeparator))

	o := h.run("paths", "--json")
	if o.code != 0 {
		t.Fatalf("exit %d: %s %s", o.code, o.stdout, o.stderr)
	}
	env := o.envelope(t)
	if diff := cmp.Diff([]string{"config_files", "global_config", "honor_skillware_skill_path", "mode", "order", "roots", "warnings"}, keys(env)); diff != "" {
		t.Errorf("envelope keys (-want +got):\n%s", diff)
	}
	if env["mode"] != "legacy" || env["honor_skillware_skill_path"] != true || len(env["config_files"].([]any)) != 0 {
		t.Errorf("mode %v honor %v files %v", env["mode"], env["honor_skillware_skill_path"], env["config_files"])
	}
	if diff := cmp.Diff([]any{"external", "project", "bundled"}, env["order"]); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
	if want := filepath.Join(h.env["HOME"], ".config", "skillware", "config.yaml"); env["global_config"] != want {
		t.Errorf("global_config %v, want %s", env["global_config"], want)
	}
	roots := env["roots"].([]any)
	first := roots[0].(map[string]any)
	want := map[string]any{"path": ext, "tier": "external", "exists": true, "skills": 1.0, "source": "env", "from": "SKILLWARE_SKILL_PATH", "entry": ext}
	if diff := cmp.Diff(want, first); diff != "" {
		t.Errorf("first root (-want +got):\n%s", diff)
	}
	miss := roots[1].(map[string]any)
	if miss["path"] != missing || miss["exists"] != false || !strings.Contains(miss["problem"].(string), "does not exist") {
		t.Errorf("second root %v, want the missing entry with a problem", miss)
	}
	cat := roots[2].(map[string]any)
	if !strings.Contains(cat["problem"].(string), "is a category folder") || !strings.Contains(cat["problem"].(string), "write "+ext+" in SKILLWARE_SKILL_PATH instead") {
		t.Errorf("third root %v, want the category folder's problem", cat)
	}
	proj := roots[3].(map[string]any)
	if proj["path"] != filepath.Join(h.project, "skills") || proj["tier"] != "project" || proj["source"] != "walk" || proj["skills"] != 1.0 {
		t.Errorf("fourth root %v, want ./skills", proj)
	}
	last := roots[len(roots)-1].(map[string]any)
	if last["tier"] != "bundled" || last["source"] != "bundled" || last["exists"] != true {
		t.Errorf("last root %v, want bundled", last)
	}
	if ws := env["warnings"].([]any); len(ws) != 2 {
		t.Errorf("warnings %v, want the missing entry and the category folder", ws)
	}

	// With a .skillware.yaml: its order, and where each root comes from.
	cfg := filepath.Join(h.project, ".skillware.yaml")
	if err := os.WriteFile(cfg, []byte("paths:\n  external:\n    - "+ext+"\nlegacy:\n  honor_skillware_skill_path: false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env = h.run("paths", "--json").envelope(t)
	if env["mode"] != "config" || env["project_config"] != cfg || env["honor_skillware_skill_path"] != false {
		t.Errorf("mode %v project_config %v honor %v", env["mode"], env["project_config"], env["honor_skillware_skill_path"])
	}
	if diff := cmp.Diff([]any{cfg}, env["config_files"]); diff != "" {
		t.Errorf("config_files (-want +got):\n%s", diff)
	}
	var got []string
	for _, r := range env["roots"].([]any) {
		r := r.(map[string]any)
		if r["exists"] == true {
			got = append(got, r["tier"].(string)+" "+r["source"].(string))
		}
		if r["source"] == "config" && (r["file"] != cfg || r["key"] != "paths.external" || r["line"] != 3.0 || r["from"] != cfg+":3 paths.external") {
			t.Errorf("config root %v, want file, key and line", r)
		}
	}
	if diff := cmp.Diff([]string{"project walk", "external config", "bundled bundled"}, got); diff != "" {
		t.Errorf("roots (-want +got):\n%s", diff)
	}
	if _, ok := env["warnings"]; ok {
		t.Errorf("warnings %v, want none (SKILLWARE_SKILL_PATH is ignored)", env["warnings"])
	}
}

func TestPathsText(t *testing.T) {
	h := rootsHarness(t)
	h.env["SKILLWARE_SKILL_PATH"] = filepath.Join(h.project, "nope")
	o := h.run("paths")
	if o.code != 0 {
		t.Fatalf("exit %d: %s %s", o.code, o.stdout, o.stderr)
	}
	for _, want := range []string{"legacy order external, project, bundled", "TIER", "SKILLWARE_SKILL_PATH", "missing", "./skills of " + h.project, "bundled", "project config: none"} {
		if !strings.Contains(o.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, o.stdout)
		}
	}
	if !strings.Contains(o.stderr, "skillbox: warning: SKILLWARE_SKILL_PATH entry "+filepath.Join(h.project, "nope")+" does not exist") {
		t.Errorf("stderr %q, want the missing entry's warning", o.stderr)
	}
	// A root's path is one cell: a tab or newline in it adds no row.
	h.env["SKILLWARE_SKILL_PATH"] = filepath.Join(h.project, "no\tpe\n1\tproject\t/fake")
	o = h.run("paths")
	if !strings.Contains(o.stdout, "no pe 1 project /fake") || strings.Contains(o.stdout, "\n1  project") {
		t.Errorf("a path with a tab and a newline:\n%s", o.stdout)
	}
	// Its warning is one line too.
	for _, l := range strings.Split(strings.TrimSuffix(o.stderr, "\n"), "\n") {
		if !strings.HasPrefix(l, "skillbox: warning: ") {
			t.Errorf("stderr line %q is not a warning of its own:\n%s", l, o.stderr)
		}
	}
	if o := h.run("help"); !strings.Contains(o.stdout, "  paths ") {
		t.Errorf("help does not list paths:\n%s", o.stdout)
	}
}

func TestRootWarningsInListAndDoctor(t *testing.T) {
	h := rootsHarness(t)
	skillDir := filepath.Join(filepath.Dir(h.project), "root", "cat", "x")
	putSkill(t, filepath.Dir(filepath.Dir(skillDir)), "cat/x")
	h.env["SKILLWARE_SKILL_PATH"] = skillDir
	want := "SKILLWARE_SKILL_PATH entry " + skillDir + " is a skill folder"

	o := h.run("list", "--json")
	if o.code != 0 {
		t.Fatalf("list: exit %d: %s %s", o.code, o.stdout, o.stderr)
	}
	env := o.envelope(t)
	if ws, _ := env["warnings"].([]any); len(ws) != 1 || !strings.HasPrefix(ws[0].(string), want) {
		t.Errorf("list warnings %v, want %q...", env["warnings"], want)
	}
	if o := h.run("list"); o.code != 0 || !strings.Contains(o.stderr, "skillbox: warning: "+want) {
		t.Errorf("list: exit %d, stderr %q; want the warning", o.code, o.stderr)
	}
	o = h.run("doctor", "--json")
	if o.code != 0 {
		t.Fatalf("doctor: exit %d: %s %s", o.code, o.stdout, o.stderr)
	}
	env = o.envelope(t)
	if ws, _ := env["root_warnings"].([]any); len(ws) != 1 || !strings.HasPrefix(ws[0].(string), want) {
		t.Errorf("doctor root_warnings %v, want %q...", env["root_warnings"], want)
	}
	if o := h.run("inspect", "cat/nope", "--json"); o.code != 2 || !strings.Contains(o.stdout, "check the roots: "+want) {
		t.Errorf("inspect: exit %d, stdout %s; want not_found naming the misplaced root", o.code, o.stdout)
	}
}

func TestInvalidSkillwareConfig(t *testing.T) {
	h := rootsHarness(t)
	cfg := filepath.Join(h.project, ".skillware.yaml")
	if err := os.WriteFile(cfg, []byte("resolution:\n  order: [project, externals]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	want := cfg + `:2: resolution.order[1]: unknown tier "externals"`
	for _, cmd := range []string{"paths", "list"} {
		o := h.run(cmd, "--json")
		if o.code != 2 {
			t.Errorf("%s: exit %d, want 2: %s %s", cmd, o.code, o.stdout, o.stderr)
			continue
		}
		env := o.envelope(t)
		body, _ := env["error"].(map[string]any)
		if env["ok"] != false || body["kind"] != "invalid" || !strings.Contains(body["message"].(string), want) {
			t.Errorf("%s: envelope %v, want invalid naming %q", cmd, env, want)
		}
	}
	o := h.run("doctor", "--json")
	if o.code != 0 {
		t.Fatalf("doctor: exit %d: %s %s", o.code, o.stdout, o.stderr)
	}
	if env := o.envelope(t); !strings.Contains(env["roots_error"].(string), want) {
		t.Errorf("doctor roots_error %v, want %q", env["roots_error"], want)
	}
}
