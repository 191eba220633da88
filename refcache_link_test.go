package skillbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/skillbox-dev/skillbox"
	"github.com/skillbox-dev/skillbox/skill"
)

// writeVersion writes the skill cat/name under base/version, returning
// {"v": version}.
func writeVersion(t *testing.T, base, version string) {
	t.Helper()
	dir := filepath.Join(base, version, "cat", "name")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "manifest.yaml"), []byte("name: name\nversion: \"1\"\ndescription: d\n"), 0o644)
	code := "from skillware.core.base_skill import BaseSkill\nclass S(BaseSkill):\n    def execute(self, params):\n        return {'v': %q}\n"
	os.WriteFile(filepath.Join(dir, "skill.py"), fmt.Appendf(nil, code, version), 0o644)
}

// swapLink points the symbolic link at link to target the way an atomic
// deploy does (ln -sfn): a new link renamed over the old one.
func swapLink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link+".new"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(link+".new", link); err != nil {
		t.Fatal(err)
	}
}

// linkRuntime is a Runtime serving the project root root on the process
// backend, and a function calling cat/name that returns its "v".
func linkRuntime(t *testing.T, root string) func() string {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("no change notification: every call resolves anew")
	}
	if _, err := exec.LookPath("python3"); err != nil && os.Getenv("SKILLBOX_PYTHON") == "" {
		t.Skip("python3 is not installed")
	}
	rt, err := skillbox.New(skillbox.WithRoots(skill.Root{Path: root, Tier: skill.TierProject}), skillbox.WithCacheDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return func() string {
		t.Helper()
		res, err := rt.Call(context.Background(), "cat/name", nil, skillbox.CallOptions{Backend: "process"})
		if err != nil {
			t.Fatal(err)
		}
		var v struct{ V string }
		json.Unmarshal(res.Value, &v)
		return v.V
	}
}

// A root that is a symbolic link swapped atomically to another version
// (ln -sfn v2 current) serves the new version from the very next call,
// and so does every later swap, back to a folder made anew included.
func TestRefCacheRootLinkSwapped(t *testing.T) {
	base := t.TempDir()
	writeVersion(t, base, "v1")
	writeVersion(t, base, "v2")
	cur := filepath.Join(base, "current")
	if err := os.Symlink("v1", cur); err != nil {
		t.Fatal(err)
	}
	call := linkRuntime(t, cur)
	for range 2 {
		if v := call(); v != "v1" {
			t.Fatalf("ran %s, want v1", v)
		}
	}
	swapLink(t, "v2", cur)
	if v := call(); v != "v2" {
		t.Fatalf("after the swap to v2: ran %s", v)
	}
	call()
	// v1 made anew (another folder at the same path), then swapped back.
	if err := os.RemoveAll(filepath.Join(base, "v1")); err != nil {
		t.Fatal(err)
	}
	writeVersion(t, base, "v1")
	swapLink(t, "v1", cur)
	if v := call(); v != "v1" {
		t.Fatalf("after the swap back to v1: ran %s", v)
	}
	call()
	// An edit of the new v1 is seen too: its folders are watched.
	os.WriteFile(filepath.Join(base, "v1", "cat", "name", "skill.py"), []byte("from skillware.core.base_skill import BaseSkill\nclass S(BaseSkill):\n    def execute(self, params):\n        return {'v': 'edited'}\n"), 0o644)
	if v := call(); v != "edited" {
		t.Fatalf("after an edit of the new v1: ran %s", v)
	}
}

// A link deeper in the path — a category folder that is a link, itself
// into a folder reached by a link — swapped atomically is seen by the very
// next call.
func TestRefCacheCategoryLinkSwapped(t *testing.T) {
	base := t.TempDir()
	writeVersion(t, base, "v1")
	writeVersion(t, base, "v2")
	root := filepath.Join(base, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	// root/cat -> ../releases/cat; releases -> v1 (a link inside the
	// target of a link).
	if err := os.Symlink(filepath.Join("..", "releases", "cat"), filepath.Join(root, "cat")); err != nil {
		t.Fatal(err)
	}
	releases := filepath.Join(base, "releases")
	if err := os.Symlink("v1", releases); err != nil {
		t.Fatal(err)
	}
	call := linkRuntime(t, root)
	for range 2 {
		if v := call(); v != "v1" {
			t.Fatalf("ran %s, want v1", v)
		}
	}
	swapLink(t, "v2", releases)
	if v := call(); v != "v2" {
		t.Fatalf("after the swap of the link in the link's target: ran %s", v)
	}
	call()
	// The category link itself, swapped to v1's category.
	swapLink(t, filepath.Join(base, "v1", "cat"), filepath.Join(root, "cat"))
	if v := call(); v != "v1" {
		t.Fatalf("after the swap of the category link: ran %s", v)
	}
}
