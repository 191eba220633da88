package skill

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skillbox-dev/skillbox/errdefs"
)

// rootView is what the tests compare of a FoundRoot.
type rootView struct {
	Path   string
	Tier   Tier
	Kind   string
	Exists bool
}

func views(f *FoundRoots) []rootView {
	var out []rootView
	for _, r := range f.All {
		out = append(out, rootView{r.Path, r.Tier, r.From.Kind, r.Exists})
	}
	return out
}

// existing drops the roots that do not exist (the walk lists its misses).
func existing(vs []rootView) []rootView {
	var out []rootView
	for _, v := range vs {
		if v.Exists {
			out = append(out, v)
		}
	}
	return out
}

func mkdirs(t *testing.T, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		must(t, os.MkdirAll(d, 0o755))
	}
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, []byte(content), 0o644))
}

// nest makes base/n5/n4/.../n1/cwd and returns the folders, cwd first and
// the sixth parent (base/n6... is not made: levels[6] is base) last.
func nest(t *testing.T) []string {
	t.Helper()
	base := t.TempDir()
	dir := base
	names := []string{"p5", "p4", "p3", "p2", "p1", "cwd"}
	levels := []string{base}
	for _, n := range names {
		dir = filepath.Join(dir, n)
		levels = append([]string{dir}, levels...)
	}
	mkdirs(t, levels[0])
	return levels // levels[i] is the i-th parent of cwd; levels[6] is base
}

// deep returns a new working directory six levels under a temporary
// folder, so that the walk up never leaves it (a skills folder or
// .skillware.yaml in /tmp must not change a test).
func deep(t *testing.T) string {
	t.Helper()
	return nest(t)[0]
}

func TestFindRootsProjectConfigWalk(t *testing.T) {
	for depth := 0; depth <= 6; depth++ {
		t.Run(map[bool]string{true: "found", false: "not found"}[depth < 6]+"/parent "+string(rune('0'+depth)), func(t *testing.T) {
			levels := nest(t)
			ext := filepath.Join(levels[6], "ext")
			mkdirs(t, ext)
			cfg := filepath.Join(levels[depth], ProjectConfigFile)
			writeFile(t, cfg, "paths:\n  external:\n    - "+ext+"\n")
			f, err := FindRoots(RootsEnv{Getenv: env(nil), Cwd: levels[0]})
			if err != nil {
				t.Fatal(err)
			}
			if depth < 6 {
				if f.ProjectConfig != cfg || f.Config == nil {
					t.Fatalf("project config %q (config %v), want %s", f.ProjectConfig, f.Config, cfg)
				}
				if diff := cmp.Diff([]Root{{ext, TierExternal}}, f.Roots()); diff != "" {
					t.Errorf("roots (-want +got):\n%s", diff)
				}
				return
			}
			// The sixth parent is not searched: Skillware looks at the
			// working directory and five parents.
			if f.ProjectConfig != "" || f.Config != nil {
				t.Fatalf("a %s in the sixth parent was read: %s", ProjectConfigFile, f.ProjectConfig)
			}
			if len(f.Roots()) != 0 {
				t.Errorf("roots %v, want none", f.Roots())
			}
		})
	}
}

func TestFindRootsSkillsWalk(t *testing.T) {
	levels := nest(t)
	for _, l := range levels {
		mkdirs(t, filepath.Join(l, "skills"))
	}
	f, err := FindRoots(RootsEnv{Getenv: env(nil), Cwd: levels[0]})
	if err != nil {
		t.Fatal(err)
	}
	var want []Root
	for _, l := range levels[:6] { // the sixth parent's skills folder is not searched
		want = append(want, Root{filepath.Join(l, "skills"), TierProject})
	}
	if diff := cmp.Diff(want, f.Roots()); diff != "" {
		t.Errorf("roots (-want +got):\n%s", diff)
	}
}

func TestFindRootsGlobalConfig(t *testing.T) {
	base := t.TempDir()
	cwd := deep(t)
	ext := func(name string) string { d := filepath.Join(base, name); mkdirs(t, d); return d }
	tests := []struct {
		name  string
		env   map[string]string
		file  string // where the global file is written
		want  string // the external root it names, "" for no config
		where string // FoundRoots.GlobalConfig
	}{
		{
			name:  "SKILLWARE_CONFIG_DIR",
			env:   map[string]string{ConfigDirEnv: filepath.Join(base, "swcfg"), "XDG_CONFIG_HOME": filepath.Join(base, "xdg"), "HOME": filepath.Join(base, "home")},
			file:  filepath.Join(base, "swcfg", GlobalConfigFile),
			want:  ext("a"),
			where: filepath.Join(base, "swcfg", GlobalConfigFile),
		},
		{
			name:  "XDG_CONFIG_HOME",
			env:   map[string]string{"XDG_CONFIG_HOME": filepath.Join(base, "xdg"), "HOME": filepath.Join(base, "home")},
			file:  filepath.Join(base, "xdg", "skillware", GlobalConfigFile),
			want:  ext("b"),
			where: filepath.Join(base, "xdg", "skillware", GlobalConfigFile),
		},
		{
			name:  "HOME",
			env:   map[string]string{"HOME": filepath.Join(base, "home")},
			file:  filepath.Join(base, "home", ".config", "skillware", GlobalConfigFile),
			want:  ext("c"),
			where: filepath.Join(base, "home", ".config", "skillware", GlobalConfigFile),
		},
		{
			name:  "SKILLWARE_CONFIG_DIR wins over a file under XDG_CONFIG_HOME",
			env:   map[string]string{ConfigDirEnv: filepath.Join(base, "empty"), "XDG_CONFIG_HOME": filepath.Join(base, "xdg2")},
			file:  filepath.Join(base, "xdg2", "skillware", GlobalConfigFile),
			where: filepath.Join(base, "empty", GlobalConfigFile),
		},
		{
			name:  "the global file is config.yaml, not .skillware.yaml",
			env:   map[string]string{ConfigDirEnv: filepath.Join(base, "dot")},
			file:  filepath.Join(base, "dot", ProjectConfigFile),
			where: filepath.Join(base, "dot", GlobalConfigFile),
		},
		{
			name: "no HOME: no global file",
			env:  map[string]string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.file != "" {
				target := tt.want
				if target == "" {
					target = ext("unused")
				}
				writeFile(t, tt.file, "paths:\n  external: ["+target+"]\n")
			}
			f, err := FindRoots(RootsEnv{Getenv: env(tt.env), Cwd: cwd})
			if err != nil {
				t.Fatal(err)
			}
			if f.GlobalConfig != tt.where {
				t.Errorf("GlobalConfig %q, want %q", f.GlobalConfig, tt.where)
			}
			if tt.want == "" {
				if f.Config != nil {
					t.Errorf("read %v, want no configuration", f.Config.Files)
				}
				return
			}
			if diff := cmp.Diff([]Root{{tt.want, TierExternal}}, f.Roots()); diff != "" {
				t.Errorf("roots (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFindRootsGlobalThenProject(t *testing.T) {
	base := t.TempDir()
	cwd, g, pext, gext, proj := deep(t), filepath.Join(base, "cfg"), filepath.Join(base, "pext"), filepath.Join(base, "gext"), filepath.Join(base, "proj")
	mkdirs(t, cwd, pext, gext, proj, filepath.Join(cwd, "skills"))
	writeFile(t, filepath.Join(g, GlobalConfigFile), "paths:\n  project: "+proj+"\n  external: ["+gext+"]\nresolution:\n  order: [external, project]\nlegacy:\n  honor_skillware_skill_path: false\n")
	// The project file overrides the order and the switch; external paths add up.
	writeFile(t, filepath.Join(cwd, ProjectConfigFile), "paths:\n  external: ["+pext+", "+gext+"]\nresolution:\n  order: [project, external, bundled]\nlegacy:\n  honor_skillware_skill_path: yes\n")
	envExt := filepath.Join(base, "envext")
	mkdirs(t, envExt)
	f, err := FindRoots(RootsEnv{Getenv: env(map[string]string{ConfigDirEnv: g, SkillPathEnv: envExt}), Cwd: cwd})
	if err != nil {
		t.Fatal(err)
	}
	want := []Root{{proj, TierProject}, {gext, TierExternal}, {pext, TierExternal}, {envExt, TierExternal}}
	if diff := cmp.Diff(want, f.Roots()); diff != "" {
		t.Errorf("roots (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{filepath.Join(g, GlobalConfigFile), filepath.Join(cwd, ProjectConfigFile)}, f.Config.Files); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
}

func TestFindRootsOrder(t *testing.T) {
	base := t.TempDir()
	cwd := deep(t)
	skills := filepath.Join(cwd, "skills")
	ext, envA, envB, explicit, bundled := filepath.Join(base, "ext"), filepath.Join(base, "envA"), filepath.Join(base, "envB"), filepath.Join(base, "explicit"), filepath.Join(base, "bundled")
	mkdirs(t, skills, ext, envA, envB, explicit, bundled)
	skillPath := envA + string(os.PathListSeparator) + " " + string(os.PathListSeparator) + envB
	P := func(p string) rootView { return rootView{p, TierProject, FromWalk, true} }
	E := func(p, kind string) rootView { return rootView{p, TierExternal, kind, true} }
	B := rootView{bundled, TierBundled, FromBundled, true}
	tests := []struct {
		name   string
		config string // "" for no file
		want   []rootView
	}{
		{"no file: legacy order", "", []rootView{E(envA, FromSkillPath), E(envB, FromSkillPath), P(skills), B}},
		{"empty file: project, external, bundled", "# nothing\n", []rootView{P(skills), E(envA, FromSkillPath), E(envB, FromSkillPath), B}},
		{"external then project", "resolution:\n  order: [external, project]\npaths:\n  external: [" + ext + "]\n",
			[]rootView{E(ext, FromConfig), E(envA, FromSkillPath), E(envB, FromSkillPath), P(skills), B}},
		{"bundled placed first; a tier not listed is not searched", "resolution:\n  order: [Bundled, PROJECT]\npaths:\n  external: [" + ext + "]\n",
			[]rootView{B, P(skills)}},
		{"honor_skillware_skill_path false", "legacy:\n  honor_skillware_skill_path: false\npaths:\n  external: [" + ext + "]\n",
			[]rootView{P(skills), E(ext, FromConfig), B}},
		{"explicit project replaces the walk", "paths:\n  project: " + explicit + "\n",
			[]rootView{{explicit, TierProject, FromConfig, true}, E(envA, FromSkillPath), E(envB, FromSkillPath), B}},
		{"project auto is the walk", "paths:\n  project: AUTO\n  external:\n",
			[]rootView{P(skills), E(envA, FromSkillPath), E(envB, FromSkillPath), B}},
		{"a folder reached twice is searched once", "paths:\n  external: [" + envB + ", " + skills + "]\n",
			[]rootView{P(skills), E(envB, FromConfig), E(envA, FromSkillPath), B}},
		{"order null is the default", "resolution:\n  order:\n",
			[]rootView{P(skills), E(envA, FromSkillPath), E(envB, FromSkillPath), B}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := filepath.Join(cwd, ProjectConfigFile)
			os.Remove(cfg)
			if tt.config != "" {
				writeFile(t, cfg, tt.config)
			}
			f, err := FindRoots(RootsEnv{Getenv: env(map[string]string{SkillPathEnv: skillPath}), Cwd: cwd, Bundled: bundled})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, existing(views(f))); diff != "" {
				t.Errorf("roots (-want +got):\n%s", diff)
			}
			if len(f.Warnings) != 0 {
				t.Errorf("warnings: %q", f.Warnings)
			}
		})
	}
}

func TestFindRootsRelativePaths(t *testing.T) {
	base := t.TempDir()
	cwd := deep(t)
	repo := filepath.Dir(cwd)
	home := filepath.Join(base, "home")
	mkdirs(t, filepath.Join(cwd, "rel"), filepath.Join(repo, "rel"), filepath.Join(home, "mine"), filepath.Join(cwd, "envrel"))
	// The file is in a parent: Skillware reads relative entries from the
	// working directory, not from the file's folder; skillbox does the
	// same and says so.
	writeFile(t, filepath.Join(repo, ProjectConfigFile), "paths:\n  external:\n    - rel\n    - ~/mine\n")
	f, err := FindRoots(RootsEnv{Getenv: env(map[string]string{"HOME": home, SkillPathEnv: "envrel"}), Cwd: cwd})
	if err != nil {
		t.Fatal(err)
	}
	want := []Root{{filepath.Join(cwd, "rel"), TierExternal}, {filepath.Join(home, "mine"), TierExternal}, {filepath.Join(cwd, "envrel"), TierExternal}}
	if diff := cmp.Diff(want, f.Roots()); diff != "" {
		t.Errorf("roots (-want +got):\n%s", diff)
	}
	if len(f.Warnings) != 1 || !strings.Contains(f.Warnings[0], ProjectConfigFile+":3: paths.external entry rel is relative, so it is read from the working directory ("+filepath.Join(cwd, "rel")+")") {
		t.Errorf("warnings %q, want one about the relative entry", f.Warnings)
	}
}

func TestFindRootsInvalidConfig(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"top level a list", "- a\n- b\n", ":1: top level must be a mapping"},
		{"paths a list", "paths: [a]\n", ":1: paths: must be a mapping"},
		{"external a string", "paths:\n  external: /x\n", ":2: paths.external: must be a list of paths"},
		{"external entry a number", "paths:\n  external:\n    - /x\n    - 3\n", ":4: paths.external[1]: must be a path (a string), got"},
		{"external entry empty", "paths:\n  external:\n    - ''\n", ":3: paths.external[0]: must not be empty"},
		{"project a list", "paths:\n  project: [a]\n", ":2: paths.project: must be a path or auto"},
		{"unknown paths key", "paths:\n  projekt: x\n", ":2: paths.projekt: unknown key"},
		{"duplicate key", "paths:\n  project: a\n  project: b\n", ":3: paths.project: duplicate key"},
		{"unknown tier", "resolution:\n  order:\n    - project\n    - externals\n", `:4: resolution.order[1]: unknown tier "externals"`},
		{"tier twice", "resolution:\n  order: [project, Project]\n", ":2: resolution.order[1]: tier project listed twice"},
		{"empty order", "resolution:\n  order: []\n", ":2: resolution.order: empty list"},
		{"order a string", "resolution:\n  order: project\n", ":2: resolution.order: must be a list of tiers"},
		{"unknown resolution key", "resolution:\n  ordre: [project]\n", ":2: resolution.ordre: unknown key"},
		{"switch not a boolean", "legacy:\n  honor_skillware_skill_path: maybe\n", ":2: legacy.honor_skillware_skill_path: must be true or false"},
		{"quoted boolean", "legacy:\n  honor_skillware_skill_path: 'false'\n", ":2: legacy.honor_skillware_skill_path: must be true or false"},
		{"unknown legacy key", "legacy:\n  honour: true\n", ":2: legacy.honour: unknown key"},
		{"syntax", "paths:\n  external: [a\n", "YAML syntax error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cwd := deep(t)
			cfg := filepath.Join(cwd, ProjectConfigFile)
			writeFile(t, cfg, tt.content)
			_, err := FindRoots(RootsEnv{Getenv: env(nil), Cwd: cwd})
			if err == nil {
				t.Fatal("no error")
			}
			if errdefs.KindOf(err) != errdefs.Invalid {
				t.Errorf("kind %s, want invalid", errdefs.KindOf(err))
			}
			if !strings.Contains(err.Error(), cfg+tt.want) && !(tt.want == "YAML syntax error" && strings.Contains(err.Error(), cfg) && strings.Contains(err.Error(), tt.want)) {
				t.Errorf("error %q, want %q", err, cfg+tt.want)
			}
		})
	}
	t.Run("global file", func(t *testing.T) {
		g := t.TempDir()
		writeFile(t, filepath.Join(g, GlobalConfigFile), "paths:\n  external: 7\n")
		_, err := FindRoots(RootsEnv{Getenv: env(map[string]string{ConfigDirEnv: g}), Cwd: deep(t)})
		if want := filepath.Join(g, GlobalConfigFile) + ":2: paths.external"; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
	})
}

func TestFindRootsValidConfigs(t *testing.T) {
	for _, content := range []string{
		"",
		"# only comments\n",
		"paths:\n",
		"paths:\n  project: auto\n  external:\n    # - /path/to/private-skills\n    []\nresolution:\n  order:\n    - project\n    - external\n    - bundled\nlegacy:\n  honor_skillware_skill_path: true\n",
		"mail:\n  signature_profile: default\npresentation:\n  theme: ocean\nchains: {}\n",
		"legacy:\n  honor_skillware_skill_path: Off\n",
	} {
		cwd := deep(t)
		writeFile(t, filepath.Join(cwd, ProjectConfigFile), content)
		f, err := FindRoots(RootsEnv{Getenv: env(nil), Cwd: cwd})
		if err != nil {
			t.Errorf("%q: %v", content, err)
			continue
		}
		if f.Config == nil || len(f.Warnings) != 0 {
			t.Errorf("%q: config %v, warnings %q", content, f.Config, f.Warnings)
		}
	}
	// An unknown top-level key is kept by Skillware; skillbox warns.
	cwd := deep(t)
	writeFile(t, filepath.Join(cwd, ProjectConfigFile), "theme: dark\npath:\n  external: [x]\n")
	f, err := FindRoots(RootsEnv{Getenv: env(nil), Cwd: cwd})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Warnings) != 2 || !strings.Contains(f.Warnings[1], ProjectConfigFile+`:2: unknown top-level key "path"`) {
		t.Errorf("warnings %q", f.Warnings)
	}
}

func TestFindRootsWrongLevelSkillPath(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "root")
	writeSkill(t, filepath.Join(root, "finance", "wallet"), "wallet")
	file := filepath.Join(base, "file")
	writeFile(t, file, "x")
	empty := filepath.Join(base, "empty")
	mkdirs(t, empty)
	tests := []struct {
		name, entry string
		exists      bool
		want        string // in the problem; "" for none
	}{
		{"a root", root, true, ""},
		{"an empty root", empty, true, ""},
		{"missing", filepath.Join(base, "nope"), false, "SKILLWARE_SKILL_PATH entry " + filepath.Join(base, "nope") + " does not exist (skipped); create it or remove it from SKILLWARE_SKILL_PATH"},
		{"a file", file, false, "is not a folder (skipped)"},
		{"a skill folder", filepath.Join(root, "finance", "wallet"), true,
			"SKILLWARE_SKILL_PATH entry " + filepath.Join(root, "finance", "wallet") + " is a skill folder (it has manifest.yaml), not a root, so no skill resolves from it; write " + root + " in SKILLWARE_SKILL_PATH instead and the skill resolves as finance/wallet"},
		{"a category folder", filepath.Join(root, "finance"), true,
			"SKILLWARE_SKILL_PATH entry " + filepath.Join(root, "finance") + " is a category folder (it holds wallet/manifest.yaml), not a root, so its skills do not resolve; write " + root + " in SKILLWARE_SKILL_PATH instead and they resolve as finance/<name>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := FindRoots(RootsEnv{Getenv: env(map[string]string{SkillPathEnv: tt.entry}), Cwd: deep(t)})
			if err != nil {
				t.Fatal(err)
			}
			if len(f.All) == 0 || f.All[0].From.Kind != FromSkillPath {
				t.Fatalf("roots %v, want the entry first", f.All)
			}
			r := f.All[0]
			if r.Exists != tt.exists {
				t.Errorf("exists %v, want %v", r.Exists, tt.exists)
			}
			if tt.want == "" {
				if r.Problem != "" || len(f.Warnings) != 0 {
					t.Errorf("problem %q, warnings %q; want none", r.Problem, f.Warnings)
				}
				return
			}
			if !strings.Contains(r.Problem, tt.want) {
				t.Errorf("problem %q, want %q", r.Problem, tt.want)
			}
			if diff := cmp.Diff([]string{r.Problem}, f.Warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("a configured entry names its file, line and key", func(t *testing.T) {
		cwd := deep(t)
		cfg := filepath.Join(cwd, ProjectConfigFile)
		writeFile(t, cfg, "paths:\n  project: "+filepath.Join(root, "finance")+"\n")
		f, err := FindRoots(RootsEnv{Getenv: env(nil), Cwd: cwd})
		if err != nil {
			t.Fatal(err)
		}
		want := cfg + ":2: paths.project entry " + filepath.Join(root, "finance") + " is a category folder"
		if len(f.Warnings) != 1 || !strings.HasPrefix(f.Warnings[0], want) || !strings.Contains(f.Warnings[0], "write "+root+" in paths.project instead") {
			t.Errorf("warnings %q, want %q...", f.Warnings, want)
		}
	})
}

func TestResolverRootWarnings(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "root")
	writeSkill(t, filepath.Join(root, "finance", "wallet"), "wallet")
	f, err := FindRoots(RootsEnv{Getenv: env(map[string]string{SkillPathEnv: root + string(os.PathListSeparator) + filepath.Join(root, "finance")}), Cwd: deep(t)})
	if err != nil {
		t.Fatal(err)
	}
	r := &Resolver{Roots: f.Roots(), Warnings: f.Warnings}
	s, err := r.Resolve("finance/wallet")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(f.Warnings, s.Warnings); diff != "" || len(s.Warnings) != 1 {
		t.Errorf("skill warnings (-want +got):\n%s", diff)
	}
	_, err = r.Resolve("finance/nope")
	if errdefs.KindOf(err) != errdefs.NotFound || !strings.Contains(err.Error(), "check the roots: SKILLWARE_SKILL_PATH entry "+filepath.Join(root, "finance")+" is a category folder") {
		t.Errorf("error %v, want not_found naming the category folder", err)
	}
}

func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{"", "# c\n", "paths:\n  project: auto\n  external: [/a, b]\n", "resolution:\n  order: [external, project]\n",
		"legacy:\n  honor_skillware_skill_path: off\n", "- a", "{", "paths: &p {external: [*p]}", "<<: {paths: {project: x}}", "mail: {a: 1}\nx: 2\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cf, err := parseConfig("f.yaml", data)
		if err != nil {
			if k := errdefs.KindOf(err); k != errdefs.Invalid {
				t.Fatalf("error kind %q, want invalid: %v", k, err)
			}
			if cf != nil || !strings.HasPrefix(err.Error(), "f.yaml") {
				t.Fatalf("file returned with an error, or the error does not name it: %v", err)
			}
			return
		}
		for _, e := range cf.external {
			if strings.TrimSpace(e.Value) == "" || e.Line <= 0 {
				t.Fatalf("accepted external entry %+v", e)
			}
		}
		if cf.orderSet && len(cf.order) > 0 {
			seen := map[Tier]bool{}
			for _, tier := range cf.order {
				if seen[tier] || (tier != TierProject && tier != TierExternal && tier != TierBundled) {
					t.Fatalf("accepted order %v", cf.order)
				}
				seen[tier] = true
			}
			if !seen[TierBundled] {
				t.Fatalf("order %v lacks bundled", cf.order)
			}
		}
	})
}
