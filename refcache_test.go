package skillbox

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

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
