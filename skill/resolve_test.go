package skill

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skillbox-dev/skillbox/errdefs"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestDefaultRoots(t *testing.T) {
	base := t.TempDir()
	// base/p7/p6/.../p1/cwd: skills at cwd and at every parent up to p7.
	cwd := base
	var levels []string // levels[0] = p7 ... deepest last
	for _, n := range []string{"p7", "p6", "p5", "p4", "p3", "p2", "p1", "cwd"} {
		cwd = filepath.Join(cwd, n)
		levels = append(levels, cwd)
		must(t, os.MkdirAll(filepath.Join(cwd, "skills"), 0o755))
	}
	must(t, os.RemoveAll(filepath.Join(levels[4], "skills"))) // p3 has none
	ext1, ext2 := filepath.Join(base, "ext1"), filepath.Join(base, "ext2")
	bundled := filepath.Join(base, "bundled")
	got := DefaultRoots(env(map[string]string{
		SkillPathEnv: ext1 + string(filepath.ListSeparator) + string(filepath.ListSeparator) + ext2,
	}), levels[7], bundled)
	want := []Root{
		{ext1, TierExternal},
		{ext2, TierExternal},
		{filepath.Join(levels[7], "skills"), TierProject}, // cwd
		{filepath.Join(levels[6], "skills"), TierProject}, // p1
		{filepath.Join(levels[5], "skills"), TierProject}, // p2
		// p3 has no skills folder
		{filepath.Join(levels[3], "skills"), TierProject}, // p4
		{filepath.Join(levels[2], "skills"), TierProject}, // p5 (5th parent)
		// p6 is the 6th parent: not searched (Skillware's loop looks at
		// six folders, the working directory and five parents)
		{bundled, TierBundled},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DefaultRoots (-want +got):\n%s", diff)
	}
}

func TestDefaultRootsMinimal(t *testing.T) {
	cwd := t.TempDir()
	if got := DefaultRoots(env(nil), cwd, ""); len(got) != 0 {
		t.Errorf("want no roots, got %v", got)
	}
	// A path listed twice is kept at its first place only.
	skills := filepath.Join(cwd, "skills")
	must(t, os.Mkdir(skills, 0o755))
	got := DefaultRoots(env(map[string]string{SkillPathEnv: skills}), cwd, skills)
	if diff := cmp.Diff([]Root{{skills, TierExternal}}, got); diff != "" {
		t.Errorf("DefaultRoots (-want +got):\n%s", diff)
	}
}

// roots makes three roots (external, project, bundled) under a temp dir.
func roots(t *testing.T) (ext, proj, bund string, r *Resolver) {
	base := t.TempDir()
	ext, proj, bund = filepath.Join(base, "ext"), filepath.Join(base, "proj", "skills"), filepath.Join(base, "bundled")
	for _, d := range []string{ext, proj, bund} {
		must(t, os.MkdirAll(d, 0o755))
	}
	return ext, proj, bund, &Resolver{Roots: []Root{{ext, TierExternal}, {proj, TierProject}, {bund, TierBundled}}}
}

func TestResolveOrderAndShadowing(t *testing.T) {
	ext, proj, bund, r := roots(t)
	writeSkill(t, filepath.Join(bund, "finance", "wallet"), "wallet")
	writeSkill(t, filepath.Join(bund, "office", "pdf"), "pdf")
	writeSkill(t, filepath.Join(proj, "finance", "wallet"), "wallet")
	writeSkill(t, filepath.Join(ext, "office", "pdf"), "pdf")
	writeSkill(t, filepath.Join(proj, "office", "pdf"), "pdf")

	tests := []struct {
		id           string
		wantDir      string
		wantTier     Tier
		wantWarnings []string
	}{
		{"finance/wallet", filepath.Join(proj, "finance", "wallet"), TierProject, []string{
			"skill finance/wallet in " + filepath.Join(proj, "finance", "wallet") + " (project) shadows the bundled skill at " + filepath.Join(bund, "finance", "wallet"),
		}},
		{"office/pdf", filepath.Join(ext, "office", "pdf"), TierExternal, []string{
			"skill office/pdf in " + filepath.Join(ext, "office", "pdf") + " (external) shadows the project skill at " + filepath.Join(proj, "office", "pdf"),
			"skill office/pdf in " + filepath.Join(ext, "office", "pdf") + " (external) shadows the bundled skill at " + filepath.Join(bund, "office", "pdf"),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			s, err := r.Resolve(tt.id)
			if err != nil {
				t.Fatal(err)
			}
			if s.ID != tt.id || s.Dir != tt.wantDir || s.Tier != tt.wantTier {
				t.Errorf("got id %s dir %s tier %s; want %s %s %s", s.ID, s.Dir, s.Tier, tt.id, tt.wantDir, tt.wantTier)
			}
			if diff := cmp.Diff(tt.wantWarnings, s.Warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			if d, _ := Digest(s.Dir); s.Digest != d || s.Bundle == nil {
				t.Errorf("digest %q, bundle %v; want %q and a bundle", s.Digest, s.Bundle, d)
			}
		})
	}
}

func TestResolveSkillPathTwoEntries(t *testing.T) {
	base := t.TempDir()
	a, b := filepath.Join(base, "a"), filepath.Join(base, "b")
	writeSkill(t, filepath.Join(b, "cat", "x"), "x")
	writeSkill(t, filepath.Join(b, "cat", "y"), "y")
	writeSkill(t, filepath.Join(a, "cat", "y"), "y")
	r := &Resolver{Roots: DefaultRoots(env(map[string]string{SkillPathEnv: a + string(filepath.ListSeparator) + b}), t.TempDir(), "")}
	for id, want := range map[string]string{"cat/x": filepath.Join(b, "cat", "x"), "cat/y": filepath.Join(a, "cat", "y")} {
		s, err := r.Resolve(id)
		if err != nil {
			t.Fatal(err)
		}
		if s.Dir != want || s.Tier != TierExternal {
			t.Errorf("%s: dir %s tier %s, want %s external", id, s.Dir, s.Tier, want)
		}
	}
}

func TestResolveNameMismatch(t *testing.T) {
	_, proj, _, r := roots(t)
	writeSkill(t, filepath.Join(proj, "finance", "wallet"), "wallet_screening")
	writeFiles(t, filepath.Join(proj, "finance", "wallet"), map[string]string{ManifestFile: manifestFor("wallet_screening") + "category: crypto\n"})
	s, err := r.Resolve("finance/wallet")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`manifest name "wallet_screening" does not match folder "wallet" (or id "finance/wallet")`,
		`manifest category "crypto" does not match folder "finance"`,
	}
	if diff := cmp.Diff(want, s.Warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}

// Real Skillware manifests often name a skill by its whole id.
func TestResolveNameMayBeTheID(t *testing.T) {
	_, proj, _, r := roots(t)
	writeSkill(t, filepath.Join(proj, "optimization", "prompt_rewriter"), "optimization/prompt_rewriter")
	s, err := r.Resolve("optimization/prompt_rewriter")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Warnings) != 0 {
		t.Errorf("unexpected warnings: %v", s.Warnings)
	}
}

func TestResolvePaths(t *testing.T) {
	_, proj, _, r := roots(t)
	inRoot := writeSkill(t, filepath.Join(proj, "finance", "wallet"), "wallet")
	outside := writeSkill(t, filepath.Join(t.TempDir(), "tools", "hello"), "hello")
	t.Chdir(filepath.Dir(filepath.Dir(outside)))

	tests := []struct {
		ref      string
		wantID   string
		wantDir  string
		wantTier Tier
		wantRoot string
	}{
		{outside, "tools/hello", outside, TierExternal, ""},
		{"./tools/hello", "tools/hello", outside, TierExternal, ""},
		{"tools/hello/", "tools/hello", outside, TierExternal, ""}, // id-shaped? no: trailing slash makes it a path
		{inRoot, "finance/wallet", inRoot, TierProject, proj},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			s, err := r.Resolve(tt.ref)
			if err != nil {
				t.Fatal(err)
			}
			got := []string{s.ID, s.Dir, string(s.Tier), s.Root}
			want := []string{tt.wantID, tt.wantDir, string(tt.wantTier), tt.wantRoot}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestResolveIDFallsBackToPath(t *testing.T) {
	_, _, _, r := roots(t)
	dir := writeSkill(t, filepath.Join(t.TempDir(), "tools", "hello"), "hello")
	t.Chdir(filepath.Dir(filepath.Dir(dir)))
	s, err := r.Resolve("tools/hello")
	if err != nil {
		t.Fatal(err)
	}
	if s.Dir != dir || s.Tier != TierExternal {
		t.Errorf("got %s (%s), want %s external", s.Dir, s.Tier, dir)
	}
}

func TestResolveErrors(t *testing.T) {
	ext, proj, bund, r := roots(t)
	writeFiles(t, filepath.Join(proj, "broken", "b"), map[string]string{ManifestFile: "name: [\n"})
	notSkill := t.TempDir()
	// A folder name with a newline would become the id and the path the
	// trust review shows, adding a line of the folder's choosing.
	newline := filepath.Join(t.TempDir(), "cat", "evil\nrow")
	writeFiles(t, newline, map[string]string{ManifestFile: "name: x\nversion: '1'\ndescription: d\n"})
	// So would bytes that are not UTF-8 (the trust store is JSON).
	latin1 := filepath.Join(t.TempDir(), "caf\xe9", "tool")
	writeFiles(t, latin1, map[string]string{ManifestFile: "name: x\nversion: '1'\ndescription: d\n"})
	t.Chdir(t.TempDir())
	tests := []struct {
		ref  string
		kind errdefs.Kind
		want []string
	}{
		{"", errdefs.Invalid, []string{"empty skill reference"}},
		{"wallet", errdefs.Invalid, []string{`invalid skill reference "wallet"`}},
		{"a b/c", errdefs.NotFound, []string{"no skill folder at a b/c"}},
		{"finance/nope", errdefs.NotFound, []string{`skill "finance/nope" not found; searched ` +
			ext + " (external), " + proj + " (project), " + bund + " (bundled)"}},
		{"./nope", errdefs.NotFound, []string{"no skill folder at"}},
		{notSkill, errdefs.Invalid, []string{"is not a skill folder: no manifest.yaml"}},
		{"broken/b", errdefs.Invalid, []string{"manifest.yaml:1: YAML syntax error"}},
		{"~nobody/x", errdefs.Invalid, []string{"~user is not supported"}},
		{newline, errdefs.Invalid, []string{`evil\nrow" holds a control character`}},
		{latin1, errdefs.Invalid, []string{`caf\xe9/tool" is not valid UTF-8; rename the folder`}},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			s, err := r.Resolve(tt.ref)
			if err == nil {
				t.Fatalf("Resolve succeeded: %+v", s)
			}
			if k := errdefs.KindOf(err); k != tt.kind {
				t.Errorf("kind %q, want %q: %v", k, tt.kind, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	var empty Resolver
	if _, err := empty.Resolve("a/b"); err == nil || !strings.Contains(err.Error(), "no roots") {
		t.Errorf("empty resolver: %v", err)
	}
}

// A typo in an id, or a skill's name under another category, gets the
// ids it may have meant; an id like none gets none.
func TestResolveSuggests(t *testing.T) {
	ext, proj, bund, r := roots(t)
	writeSkill(t, filepath.Join(bund, "text", "word_stats"), "word_stats")
	writeSkill(t, filepath.Join(proj, "text", "word_count"), "word_count")
	writeSkill(t, filepath.Join(ext, "finance", "wallet"), "wallet")
	writeSkill(t, filepath.Join(proj, "crypto", "wallet"), "wallet")
	t.Chdir(t.TempDir())
	for ref, want := range map[string]string{
		"text/wordstats":    "; did you mean text/word_stats?",
		"text/Word_Stats":   "; did you mean text/word_stats?",
		"text/word_stat":    "; did you mean text/word_stats?",
		"text/word_cunt":    "; did you mean text/word_count?",
		"money/wallet":      "; did you mean crypto/wallet or finance/wallet?",
		"finance/walet":     "; did you mean finance/wallet?",
		"text/readability":  "",
		"office/word_stats": "; did you mean text/word_stats?",
	} {
		_, err := r.Resolve(ref)
		if errdefs.KindOf(err) != errdefs.NotFound {
			t.Fatalf("Resolve(%q): %v", ref, err)
		}
		msg := err.Error()
		if want == "" && strings.Contains(msg, "did you mean") || want != "" && !strings.HasSuffix(msg, want) {
			t.Errorf("Resolve(%q): %q, want it to end %q", ref, msg, want)
		}
	}
	for _, c := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"abc", "", 3}, {"kitten", "sitting", 3}, {"a/b", "a/b", 0}, {"wordstats", "word_stats", 1}} {
		if got := editDistance(c.a, c.b); got != c.d || editDistance(c.b, c.a) != c.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", c.a, c.b, got, c.d)
		}
	}
}

func TestValidID(t *testing.T) {
	for id, want := range map[string]bool{
		"finance/wallet": true, "a.b/c-d_e": true, "A1/B2": true,
		"a": false, "a/b/c": false, "../a": false, "a/..": false, "./a": false, "a/": false, "/a": false,
		"a b/c": false, "a/b\x00": false, "": false,
	} {
		if got := ValidID(id); got != want {
			t.Errorf("ValidID(%q) = %v, want %v", id, got, want)
		}
	}
}

func TestList(t *testing.T) {
	ext, proj, bund, r := roots(t)
	writeSkill(t, filepath.Join(bund, "finance", "wallet"), "wallet")
	writeSkill(t, filepath.Join(bund, "office", "pdf"), "pdf")
	writeSkill(t, filepath.Join(proj, "finance", "wallet"), "wallet")
	writeSkill(t, filepath.Join(ext, "zeta", "last"), "last")
	writeFiles(t, filepath.Join(proj, "broken", "b"), map[string]string{ManifestFile: manifestFor("b")}) // no skill.py
	writeSkill(t, filepath.Join(proj, ".hidden", "h"), "h")
	writeSkill(t, filepath.Join(proj, "__pycache__", "p"), "p")
	writeSkill(t, filepath.Join(proj, "cat", ".h"), "h")
	writeFiles(t, filepath.Join(proj, "cat", "notaskill"), map[string]string{"README": ""})
	writeSkill(t, filepath.Join(proj, "cat", "bad name"), "bad")
	r.Roots = append(r.Roots, Root{filepath.Join(t.TempDir(), "missing"), TierExternal})

	skills, errs := r.List()
	type row struct {
		ID, Dir  string
		Tier     Tier
		Warnings []string
	}
	var got []row
	for _, s := range skills {
		got = append(got, row{s.ID, s.Dir, s.Tier, s.Warnings})
	}
	want := []row{
		{"finance/wallet", filepath.Join(proj, "finance", "wallet"), TierProject, []string{
			"skill finance/wallet in " + filepath.Join(proj, "finance", "wallet") + " (project) shadows the bundled skill at " + filepath.Join(bund, "finance", "wallet"),
		}},
		{"office/pdf", filepath.Join(bund, "office", "pdf"), TierBundled, nil},
		{"zeta/last", filepath.Join(ext, "zeta", "last"), TierExternal, nil},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("List skills (-want +got):\n%s", diff)
	}
	var msgs []string
	for _, e := range errs {
		if errdefs.KindOf(e) != errdefs.Invalid {
			t.Errorf("error kind %q: %v", errdefs.KindOf(e), e)
		}
		msgs = append(msgs, e.Error())
	}
	wantErrs := []string{
		"skill folder " + filepath.Join(proj, "broken", "b") + " has no skill.py",
		"skill folder " + filepath.Join(proj, "cat", "bad name") + `: "cat/bad name" is not a valid skill id`,
	}
	if len(msgs) != len(wantErrs) {
		t.Fatalf("errors:\n%s\nwant %d", strings.Join(msgs, "\n"), len(wantErrs))
	}
	for i := range wantErrs {
		if !strings.Contains(msgs[i], wantErrs[i]) {
			t.Errorf("error %d = %q, want it to contain %q", i, msgs[i], wantErrs[i])
		}
	}
}

// An external root inside a project root (the reviewer's layout:
// .skillware.yaml names ./skills/vendor as external): its skill is
// external by id and by path alike, never project because the project
// root holds the path too.
func TestResolveNestedExternalRoot(t *testing.T) {
	cwd := deep(t)
	writeFile(t, filepath.Join(cwd, ProjectConfigFile), "paths:\n  external: [./skills/vendor]\n")
	vendor := filepath.Join(cwd, "skills", "vendor")
	dir := writeSkill(t, filepath.Join(vendor, "acme", "tool"), "tool")
	deeper := writeSkill(t, filepath.Join(vendor, "x", "acme", "other"), "other")
	f, err := FindRoots(RootsEnv{Getenv: env(nil), Cwd: cwd})
	if err != nil {
		t.Fatal(err)
	}
	want := []Root{{filepath.Join(cwd, "skills"), TierProject}, {vendor, TierExternal}}
	if diff := cmp.Diff(want, f.Roots()); diff != "" {
		t.Fatalf("roots (-want +got):\n%s", diff)
	}
	r := &Resolver{Roots: f.Roots(), Warnings: f.Warnings}
	t.Chdir(cwd)
	for _, tt := range []struct{ name, ref, id, dir string }{
		{"id", "acme/tool", "acme/tool", dir},
		{"relative path", "./skills/vendor/acme/tool", "acme/tool", dir},
		{"absolute path", dir, "acme/tool", dir},
		// Not category/name under any root: the deepest root holding it.
		{"deeper path", deeper, "acme/other", deeper},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := r.Resolve(tt.ref)
			if err != nil {
				t.Fatal(err)
			}
			got := []string{s.ID, s.Dir, string(s.Tier), s.Root}
			want := []string{tt.id, tt.dir, string(TierExternal), vendor}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("id, dir, tier, root (-want +got):\n%s", diff)
			}
		})
	}
	skills, errs := r.List()
	if len(errs) != 0 || len(skills) != 1 || skills[0].ID != "acme/tool" || skills[0].Tier != TierExternal {
		t.Errorf("List: %v, errors %v; want acme/tool external", skills, errs)
	}
}

// A skill folder two roots hold gets the stricter tier however it is
// reached: a project root inside an external one, and an external root
// reached through a symlink in a project root.
func TestResolveNestedRootsStrictestTier(t *testing.T) {
	t.Run("project inside external", func(t *testing.T) {
		ext := t.TempDir()
		proj := filepath.Join(ext, "proj")
		dir := writeSkill(t, filepath.Join(proj, "acme", "tool"), "tool")
		r := &Resolver{Roots: []Root{{proj, TierProject}, {ext, TierExternal}}}
		for _, ref := range []string{"acme/tool", dir} {
			s, err := r.Resolve(ref)
			if err != nil {
				t.Fatal(err)
			}
			if s.Tier != TierExternal || s.Root != proj || s.ID != "acme/tool" {
				t.Errorf("%s: %s in %s (%s), want acme/tool in %s (external)", ref, s.ID, s.Root, s.Tier, proj)
			}
		}
	})
	t.Run("symlink into external", func(t *testing.T) {
		base := t.TempDir()
		proj, ext := filepath.Join(base, "skills"), filepath.Join(base, "ext")
		dir := writeSkill(t, filepath.Join(ext, "acme", "tool"), "tool")
		mkdirs(t, proj)
		must(t, os.Symlink(ext, filepath.Join(proj, "vendor")))
		r := &Resolver{Roots: []Root{{proj, TierProject}, {ext, TierExternal}}}
		for _, ref := range []string{"acme/tool", filepath.Join(proj, "vendor", "acme", "tool"), dir} {
			s, err := r.Resolve(ref)
			if err != nil {
				t.Fatal(err)
			}
			if s.Tier != TierExternal || s.Root != ext || s.ID != "acme/tool" {
				t.Errorf("%s: %s in %s (%s), want acme/tool in %s (external)", ref, s.ID, s.Root, s.Tier, ext)
			}
		}
	})
}

// Ref names a skill so that a command printed with it resolves to the same
// folder: the id only when resolving the id finds that folder, else the
// folder. A skill nested deeper in a root, or shadowed by an earlier root,
// has an id that names another bundle.
func TestRefResolvesToTheSameFolder(t *testing.T) {
	base := t.TempDir()
	proj, ext := filepath.Join(base, "proj"), filepath.Join(base, "ext")
	direct := writeSkill(t, filepath.Join(ext, "crypto", "x"), "x")
	nested := writeSkill(t, filepath.Join(ext, "vendor", "crypto", "x"), "x")
	outside := writeSkill(t, filepath.Join(base, "elsewhere", "tools", "hello"), "hello")
	shadowed := writeSkill(t, filepath.Join(ext, "util", "echo"), "echo")
	writeSkill(t, filepath.Join(proj, "util", "echo"), "echo")
	r := &Resolver{Roots: []Root{{Path: proj, Tier: TierProject}, {Path: ext, Tier: TierExternal}}}
	for _, tt := range []struct{ ref, want string }{
		{"crypto/x", "crypto/x"},
		{direct, "crypto/x"},
		{nested, nested},
		{outside, outside},
		{shadowed, shadowed},
		{"util/echo", "util/echo"},
	} {
		s, err := r.Resolve(tt.ref)
		if err != nil {
			t.Fatalf("%s: %v", tt.ref, err)
		}
		if got := s.Ref(); got != tt.want {
			t.Errorf("Resolve(%s).Ref() = %s, want %s", tt.ref, got, tt.want)
		}
		if again, err := r.Resolve(s.Ref()); err != nil || again.Dir != s.Dir {
			t.Errorf("Resolve(%s) = %v, %v: not the folder %s it names", s.Ref(), again, err, s.Dir)
		}
	}
	skills, _ := r.List()
	for _, s := range skills {
		if s.Ref() != s.ID {
			t.Errorf("listed %s: Ref() = %s, want its id", s.ID, s.Ref())
		}
	}
}
