package skillbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/skill"
)

func writeSkill(t *testing.T, dir, version string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "manifest.yaml"), []byte("name: "+filepath.Base(dir)+"\nversion: \""+version+"\"\ndescription: d\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "skill.py"), []byte("from skillware.core.base_skill import BaseSkill\nclass S(BaseSkill):\n    def execute(self, params):\n        return {}\n"), 0o644)
}

// A call reuses the resolution of its skill until something it read
// changes: an edit anywhere in the bundle, a new folder that shadows it, its
// removal. Each change is seen by the very next call.
func TestRefCache(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("no change notification: every call resolves")
	}
	first, second := t.TempDir(), t.TempDir()
	roots := []skill.Root{{Path: first, Tier: skill.TierProject}, {Path: second, Tier: skill.TierExternal}}
	res := &skill.Resolver{Roots: roots}
	resolves := 0
	c := newRefCache(roots, func(ref string) (*skill.Skill, error) { resolves++; return res.Resolve(ref) })
	defer c.close()
	dir := filepath.Join(second, "cat", "name")
	writeSkill(t, dir, "1")

	get := func(ref, wantVersion string, wantResolves int) *skill.Skill {
		t.Helper()
		s, err := c.get(ref)
		if err != nil {
			t.Fatalf("get %s: %v", ref, err)
		}
		if s.Bundle.Manifest.Version != wantVersion || resolves != wantResolves {
			t.Fatalf("get %s: version %s after %d resolutions, want %s after %d", ref, s.Bundle.Manifest.Version, resolves, wantVersion, wantResolves)
		}
		return s
	}
	get("cat/name", "1", 1)
	if c.n == nil {
		t.Fatal("no notifier on Linux")
	}
	get("cat/name", "1", 1)
	get("cat/name", "1", 1)

	writeSkill(t, dir, "2") // an edit
	get("cat/name", "2", 2)
	get("cat/name", "2", 2)

	os.WriteFile(filepath.Join(dir, "lib", "helper.py"), []byte("x = 1\n"), 0o644) // below the top folder
	s := get("cat/name", "2", 3)
	get("cat/name", "2", 3)

	writeSkill(t, filepath.Join(first, "cat", "name"), "3") // shadows it from an earlier root
	if s = get("cat/name", "3", 4); s.Tier != skill.TierProject {
		t.Errorf("tier %s, want the shadowing project copy", s.Tier)
	}
	os.RemoveAll(filepath.Join(first, "cat"))
	get("cat/name", "2", 5)

	// By path.
	get(dir, "2", 6)
	get(dir, "2", 6)
	writeSkill(t, dir, "4")
	get(dir, "4", 7)

	os.RemoveAll(dir)
	if _, err := c.get("cat/name"); err == nil || resolves != 8 {
		t.Errorf("after removal: %v (%d resolutions)", err, resolves)
	}

	// Made anew at the same path: the new folders are watched, not the
	// removed ones'.
	writeSkill(t, dir, "5")
	get("cat/name", "5", 9)
	get("cat/name", "5", 9)
	os.WriteFile(filepath.Join(dir, "lib", "helper.py"), []byte("x = 2\n"), 0o644)
	get("cat/name", "5", 10)
}

// Calls resolving different skills at once, while the cache is closed
// under them, share one notifier safely (run with -race) and each gets its
// own skill.
func TestRefCacheConcurrent(t *testing.T) {
	root := t.TempDir()
	roots := []skill.Root{{Path: root, Tier: skill.TierExternal}}
	res := &skill.Resolver{Roots: roots}
	c := newRefCache(roots, res.Resolve)
	const skills = 8
	for i := range skills {
		writeSkill(t, filepath.Join(root, "cat", fmt.Sprintf("s%d", i)), "1")
	}
	var wg sync.WaitGroup
	for i := range skills {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ref := fmt.Sprintf("cat/s%d", i)
			for range 20 {
				s, err := c.get(ref)
				if err != nil {
					t.Errorf("get %s: %v", ref, err)
					return
				}
				if s.Bundle.Manifest.Name != fmt.Sprintf("s%d", i) {
					t.Errorf("get %s gave %s", ref, s.Bundle.Manifest.Name)
					return
				}
			}
		}()
	}
	wg.Wait()
	// Close while calls still resolve: they fall back to resolving.
	wg.Add(skills)
	for i := range skills {
		go func() {
			defer wg.Done()
			if _, err := c.get(fmt.Sprintf("cat/s%d", i)); err != nil {
				t.Errorf("get after close: %v", err)
			}
		}()
	}
	c.close()
	wg.Wait()
}

// linkFolders follows a path as the kernel does: the folders holding the
// links met, those in the links' targets included, and where the way ends.
func TestLinkFolders(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("followed only where there is a notifier: Linux")
	}
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	mk := func(p string) {
		if err := os.MkdirAll(filepath.Join(base, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ln := func(target, p string) {
		if err := os.Symlink(target, filepath.Join(base, p)); err != nil {
			t.Fatal(err)
		}
	}
	mk("v1/cat/name")
	mk("root")
	mk("other")
	ln("v1", "releases")                       // base holds it
	ln("../releases/cat", "root/cat")          // root holds it; its target passes releases
	ln(filepath.Join(base, "root"), "other/r") // absolute
	ln("loop2", "loop1")
	ln("loop1", "loop2")
	ln("missing", "dangling")
	for _, c := range []struct {
		path, real string
		holders    []string
	}{
		{"v1/cat/name", "v1/cat/name", nil},
		{"root/cat/name", "v1/cat/name", []string{"root", ""}},
		{"other/r/cat/name", "v1/cat/name", []string{"other", "root", ""}},
		{"root/cat/nope", "", []string{"root", "", "v1/cat"}},
		{"dangling/x", "", []string{"", ""}},
	} {
		real, holders, err := linkFolders(filepath.Join(base, c.path))
		want := make([]string, len(c.holders))
		for i, h := range c.holders {
			want[i] = filepath.Join(base, h)
		}
		if c.real != "" {
			c.real = filepath.Join(base, c.real)
		}
		if err != nil || real != c.real || !slices.Equal(holders, want) {
			t.Errorf("%s: %q, %q, %v; want %q, %q", c.path, real, holders, err, c.real, want)
		}
	}
	if _, _, err := linkFolders(filepath.Join(base, "loop1", "x")); !errors.Is(err, errUnwatchable) {
		t.Errorf("a loop of links: %v, want an error (not kept)", err)
	}
}

// A Runtime that reaches its watch limit starts over with a new notifier
// and keeps caching; a resolution that alone needs more watches than the
// limit is made every call.
func TestRefCacheWatchLimit(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("no change notification: every call resolves")
	}
	root, err := filepath.EvalSymlinks(t.TempDir()) // no link on the way: no watch of its folder
	if err != nil {
		t.Fatal(err)
	}
	roots := []skill.Root{{Path: root, Tier: skill.TierExternal}}
	res := &skill.Resolver{Roots: roots}
	resolves := 0
	c := newRefCache(roots, func(ref string) (*skill.Skill, error) { resolves++; return res.Resolve(ref) })
	c.maxWatches = 8
	defer c.close()
	for i := range 4 {
		writeSkill(t, filepath.Join(root, "cat", fmt.Sprintf("s%d", i)), "1")
	}
	get := func(ref string, wantResolves int) {
		t.Helper()
		if _, err := c.get(ref); err != nil || resolves != wantResolves {
			t.Fatalf("get %s: %v after %d resolutions, want %d", ref, err, resolves, wantResolves)
		}
	}
	// root and cat, then each skill's folder and lib: 4, 6, 8, then 10.
	get("cat/s0", 1)
	get("cat/s1", 2)
	get("cat/s2", 3)
	first := c.n
	get("cat/s3", 4)
	if c.n == nil || c.n == first {
		t.Fatal("the limit stopped caching instead of starting over")
	}
	get("cat/s3", 4)
	get("cat/s0", 5) // dropped with the old notifier
	get("cat/s0", 5)
	writeSkill(t, filepath.Join(root, "cat", "s0"), "2")
	get("cat/s0", 6)

	for i := range 8 {
		os.MkdirAll(filepath.Join(root, "cat", "big", fmt.Sprint(i)), 0o755)
	}
	writeSkill(t, filepath.Join(root, "cat", "big"), "1")
	get("cat/big", 7)
	get("cat/big", 8)
	if c.n != nil {
		t.Error("caching goes on though one skill needs more watches than the limit")
	}
}

// blind is a notifier that reports nothing, as inotify reports no mount.
type blind struct{}

func (blind) watch(string) error      { return nil }
func (blind) watchLinks(string) error { return nil }
func (blind) changed() bool           { return false }
func (blind) close()                  {}

// What the notifier does not report — a mount over a skill's folder, say —
// the Runtime's watcher finds by its stat walk, and the kept resolution
// goes: a later call runs the new bundle.
func TestRefCacheForgottenByWatcher(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil && os.Getenv("SKILLBOX_PYTHON") == "" {
		t.Skip("python3 is not installed")
	}
	root := t.TempDir()
	dir := filepath.Join(root, "cat", "name")
	write := func(v string) {
		writeSkill(t, dir, "1")
		code := "from skillware.core.base_skill import BaseSkill\nclass S(BaseSkill):\n    def execute(self, params):\n        return {'v': %q}\n"
		os.WriteFile(filepath.Join(dir, "skill.py"), fmt.Appendf(nil, code, v), 0o644)
	}
	write("1")
	rt, err := New(WithRoots(skill.Root{Path: root, Tier: skill.TierProject}), WithCacheDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	rt.refs.mu.Lock()
	rt.refs.started, rt.refs.n = true, blind{}
	rt.refs.mu.Unlock()
	call := func() string {
		t.Helper()
		res, err := rt.Call(context.Background(), "cat/name", nil, CallOptions{Backend: "process"})
		if err != nil {
			t.Fatal(err)
		}
		var v struct{ V string }
		json.Unmarshal(res.Value, &v)
		return v.V
	}
	if v := call(); v != "1" {
		t.Fatalf("ran %s, want 1", v)
	}
	write("2")
	deadline := time.Now().Add(10 * time.Second)
	for call() != "2" {
		if time.Now().After(deadline) {
			t.Fatal("still running the old bundle 10s after a change the notifier did not report")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
