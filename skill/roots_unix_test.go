//go:build unix

package skill

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skillbox-dev/skillbox/errdefs"
)

// nobody is the uid the ownership tests give folders of "another user".
const nobody = 65534

// asAnotherUser chowns the paths to uid nobody, as root only.
func asAnotherUser(t *testing.T, paths ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a folder to another user")
	}
	for _, p := range paths {
		must(t, os.Lchown(p, nobody, nobody))
	}
}

// A skills folder or .skillware.yaml that the walk up from the working
// directory finds, but that another user owns, is ignored with a warning
// naming it and its owner: the reviewer's shared /tmp-like folder, where
// another user planted skills/text/word_stats.
func TestFindRootsIgnoresAnotherUsersWalkedFolders(t *testing.T) {
	levels := nest(t)
	cwd, shared := levels[0], levels[1]
	planted := filepath.Join(shared, "skills")
	writeSkill(t, filepath.Join(planted, "text", "word_stats"), "word_stats")
	own := filepath.Join(levels[2], "skills")
	mkdirs(t, own)
	asAnotherUser(t, planted)

	f, err := FindRoots(RootsEnv{Getenv: env(nil), Cwd: cwd})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Root{{own, TierProject}}, f.Roots()); diff != "" {
		t.Errorf("roots (-want +got):\n%s", diff)
	}
	if len(f.Warnings) != 1 || !strings.Contains(f.Warnings[0], planted) || !strings.Contains(f.Warnings[0], "uid 65534") {
		t.Errorf("warnings %q, want one naming %s and uid 65534", f.Warnings, planted)
	}
	if got := DefaultRoots(env(nil), cwd, ""); !cmp.Equal(got, []Root{{own, TierProject}}) {
		t.Errorf("DefaultRoots %v, want only %s", got, own)
	}
	r := &Resolver{Roots: f.Roots(), Warnings: f.Warnings}
	if _, err := r.Resolve("text/word_stats"); err == nil || !strings.Contains(err.Error(), "check the roots: ") {
		t.Errorf("resolve the planted skill: %v, want not found naming the ignored folder", err)
	}

	// Its .skillware.yaml is not read either; the next one up is.
	cfg := filepath.Join(shared, ProjectConfigFile)
	writeFile(t, cfg, "paths:\n  project: "+planted+"\n")
	asAnotherUser(t, cfg)
	ours := filepath.Join(levels[3], ProjectConfigFile)
	writeFile(t, ours, "resolution:\n  order: [bundled]\n")
	f, err = FindRoots(RootsEnv{Getenv: env(nil), Cwd: cwd})
	if err != nil {
		t.Fatal(err)
	}
	if f.ProjectConfig != ours || len(f.Roots()) != 0 {
		t.Errorf("project config %s, roots %v; want %s and no roots", f.ProjectConfig, f.Roots(), ours)
	}
	if len(f.Warnings) != 1 || !strings.Contains(f.Warnings[0], cfg) || !strings.Contains(f.Warnings[0], "uid 65534") {
		t.Errorf("warnings %q, want one naming %s and uid 65534", f.Warnings, cfg)
	}

	// Named by the operator, the same folder is a root as asked.
	f, err = FindRoots(RootsEnv{Getenv: env(map[string]string{SkillPathEnv: planted, ConfigDirEnv: t.TempDir()}), Cwd: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Root{{planted, TierExternal}}, f.Roots()); diff != "" {
		t.Errorf("roots from %s (-want +got):\n%s", SkillPathEnv, diff)
	}
}

// A walked folder anyone may write is ignored whoever owns it; a symlink
// another user made is ignored wherever it points; a walked folder also
// named in SKILLWARE_SKILL_PATH is still that root.
func TestFindRootsIgnoresOpenWalkedFolders(t *testing.T) {
	t.Run("writable by anyone", func(t *testing.T) {
		levels := nest(t)
		open := filepath.Join(levels[1], "skills")
		mkdirs(t, open)
		must(t, os.Chmod(open, os.ModeSticky|0o777)) // as /tmp
		f, err := FindRoots(RootsEnv{Getenv: env(nil), Cwd: levels[0]})
		if err != nil {
			t.Fatal(err)
		}
		if len(f.Roots()) != 0 || len(f.Warnings) != 1 || !strings.Contains(f.Warnings[0], open+" is not searched: anyone may write it (mode 1777)") {
			t.Errorf("roots %v, warnings %q; want none and one naming %s", f.Roots(), f.Warnings, open)
		}
		if r := f.All[1]; r.Path != open || !r.Ignored || r.Exists || r.Problem != f.Warnings[0] {
			t.Errorf("root %+v, want %s ignored with the warning", r, open)
		}
	})
	t.Run("another user's symlink", func(t *testing.T) {
		levels := nest(t)
		target := filepath.Join(t.TempDir(), "ours")
		mkdirs(t, target)
		link := filepath.Join(levels[1], "skills")
		must(t, os.Symlink(target, link))
		asAnotherUser(t, link)
		f, err := FindRoots(RootsEnv{Getenv: env(nil), Cwd: levels[0]})
		if err != nil {
			t.Fatal(err)
		}
		if len(f.Roots()) != 0 || len(f.Warnings) != 1 || !strings.Contains(f.Warnings[0], "the symlink belongs to uid 65534") {
			t.Errorf("roots %v, warnings %q; want none and one about the symlink", f.Roots(), f.Warnings)
		}
	})
	t.Run("named in SKILLWARE_SKILL_PATH too", func(t *testing.T) {
		levels := nest(t)
		planted := filepath.Join(levels[1], "skills")
		mkdirs(t, planted)
		asAnotherUser(t, planted)
		// The project tier comes first with a configuration file.
		writeFile(t, filepath.Join(levels[0], ProjectConfigFile), "")
		f, err := FindRoots(RootsEnv{Getenv: env(map[string]string{SkillPathEnv: planted}), Cwd: levels[0]})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]Root{{planted, TierExternal}}, f.Roots()); diff != "" {
			t.Errorf("roots (-want +got):\n%s", diff)
		}
	})
}

func TestOwnerRule(t *testing.T) {
	const me, other = 1000, 1001
	for _, tt := range []struct {
		uid  int
		mode uint32
		me   int
		want string
	}{
		{me, 0o755, me, ""},
		{me, 0o775, me, ""}, // the user's own group: umask 002
		{me, 0o777, me, "anyone may write it (mode 0777)"},
		{0, 0o755, me, ""},
		{0, 0o775, me, "it belongs to root and its group may write it (mode 0775)"},
		{0, 0o1777, me, "anyone may write it (mode 1777)"},
		{other, 0o755, me, "it belongs to uid 1001"},
		{other, 0o700, 0, "it belongs to uid 1001"}, // root running in a user's folder
		{0, 0o775, 0, ""},
	} {
		if got := ownerRule(tt.uid, tt.mode, tt.me); !strings.HasPrefix(got, tt.want) || (tt.want == "") != (got == "") {
			t.Errorf("ownerRule(%d, %04o, %d) = %q, want %q", tt.uid, tt.mode, tt.me, got, tt.want)
		}
	}
}

// A .skillware.yaml that is large, or a link to a file that never ends
// (/proc/self/pagemap: a regular file of size 0 that reads for hundreds
// of GiB), is refused after reading at most one byte past the limit. It
// used to be read whole before its size was checked: a repository holding
// such a link made `skillbox list` in it eat the host's memory.
func TestFindRootsHugeProjectConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, ProjectConfigFile)
	f, err := os.Create(cfg)
	must(t, err)
	must(t, f.Truncate(64<<20)) // sparse: no disk
	must(t, f.Close())
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = FindRoots(RootsEnv{Getenv: env(nil), Cwd: dir})
	runtime.ReadMemStats(&after)
	if err == nil || errdefs.KindOf(err) != errdefs.Invalid || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("err %v, want invalid: too large", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 16<<20 {
		t.Errorf("reading a 64 MiB %s allocated %d bytes: it was read past the %d-byte limit", ProjectConfigFile, got, maxConfigSize)
	}
	if _, err := os.Stat("/proc/self/pagemap"); err == nil {
		must(t, os.Remove(cfg))
		must(t, os.Symlink("/proc/self/pagemap", cfg))
		_, err = FindRoots(RootsEnv{Getenv: env(nil), Cwd: dir})
		// (The kernel refuses the read of the byte past the limit: pagemap
		// reads whole 8-byte entries.)
		if err == nil || errdefs.KindOf(err) != errdefs.Invalid {
			t.Fatalf("a link to /proc/self/pagemap: err %v, want invalid", err)
		}
	}
}
