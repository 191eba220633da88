package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/internal/image/imagetest"
	"github.com/skillbox-dev/skillbox/internal/lockfile"
	"github.com/skillbox-dev/skillbox/internal/trust"
)

// TestTrustPinsImage: trusting an external container skill pins the
// digest its image reference resolves to (a loopback registry's tag); a
// tag moved since is untrusted like an edited bundle: the call is denied
// naming both digests, and trusting again pins the new one.
func TestTrustPinsImage(t *testing.T) {
	h := newHarness(t)
	ext := h.external()
	t.Setenv("XDG_CACHE_HOME", h.env["XDG_CACHE_HOME"]) // the linux backend's image cache
	host := imagetest.Registry(t)
	ref := host + "/skills/tiny:1"
	first := imagetest.Push(t, ref, imagetest.Tiny(t, "first"))
	dir := filepath.Join(ext, "test", "boxed")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	manifest := "name: boxed\nversion: '1.0.0'\ndescription: Runs in an image.\nexecution: container\ncontainer:\n  image: " + ref + "\n"
	skillPy := "from skillware.core.base_skill import BaseSkill\n\nclass Boxed(BaseSkill):\n    def execute(self, params):\n        return {}\n"
	for name, text := range map[string]string{"manifest.yaml": manifest, "skill.py": skillPy} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	o := h.run("trust", "test/boxed", "--yes", "--json")
	if o.code != 0 {
		t.Fatalf("trust: exit %d %s %s", o.code, o.stdout, o.stderr)
	}
	sk := o.envelope(t)["skill"].(map[string]any)
	if img, _ := sk["image"].(map[string]any); img["digest"] != first || img["ref"] != ref {
		t.Errorf("trust --json skill: %v, want image %s at %s", sk, ref, first)
	}
	st, err := trust.Open(filepath.Join(h.env["XDG_CONFIG_HOME"], "skillbox", "trust.json"))
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := st.Lookup("test/boxed"); !ok || e.Image == nil || e.Image.Digest != first {
		t.Fatalf("trust store entry %+v, want the image pinned at %s", e, first)
	}
	if o := h.run("trust", "test/boxed", "--yes", "--json"); o.envelope(t)["action"] != "unchanged" {
		t.Errorf("trusting again with the same image: %s", o.stdout)
	}

	moved := imagetest.Push(t, ref, imagetest.Tiny(t, "moved"))
	if os.Geteuid() == 0 {
		o = h.run("run", "test/boxed", "--backend", "linux", "--json")
		if o.code == 0 || !strings.Contains(o.stdout+o.stderr, "is now "+moved+", not the "+first) {
			t.Errorf("run after the tag moved: exit %d %s %s; want a denial naming both digests", o.code, o.stdout, o.stderr)
		}
	}
	o = h.run("trust", "test/boxed", "--yes", "--json")
	env := o.envelope(t)
	if env["action"] != "trusted" {
		t.Fatalf("trusting the moved image: %s %s", o.stdout, o.stderr)
	}
	if img, _ := env["skill"].(map[string]any)["image"].(map[string]any); img["digest"] != moved {
		t.Errorf("re-trusted with image %v, want %s", img, moved)
	}
}

// TestLockPinsImage: `skillbox lock` records a container skill's image
// digest beside its bundle digest; once the tag moves, a --locked call is
// denied, and locking again records the new image.
func TestLockPinsImage(t *testing.T) {
	h := newHarness(t)
	t.Setenv("XDG_CACHE_HOME", h.env["XDG_CACHE_HOME"]) // the linux backend's image cache
	host := imagetest.Registry(t)
	ref := host + "/skills/tiny:1"
	first := imagetest.Push(t, ref, imagetest.Tiny(t, "first"))
	dir := filepath.Join(h.project, "skills", "test", "boxed")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	manifest := "name: boxed\nversion: '1.0.0'\ndescription: Runs in an image.\nexecution: container\ncontainer:\n  image: " + ref + "\n"
	skillPy := "from skillware.core.base_skill import BaseSkill\n\nclass Boxed(BaseSkill):\n    def execute(self, params):\n        return {}\n"
	for name, text := range map[string]string{"manifest.yaml": manifest, "skill.py": skillPy} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	o := h.run("lock", "test/boxed", "--json")
	if o.code != 0 {
		t.Fatalf("lock: exit %d %s %s", o.code, o.stdout, o.stderr)
	}
	locked := o.envelope(t)["locked"].([]any)[0].(map[string]any)
	if img, _ := locked["image"].(map[string]any); img["digest"] != first || img["ref"] != ref {
		t.Errorf("locked entry %v, want image %s at %s", locked, ref, first)
	}
	moved := imagetest.Push(t, ref, imagetest.Tiny(t, "moved"))
	if os.Geteuid() == 0 {
		o = h.run("run", "test/boxed", "--backend", "linux", "--locked", "--json")
		if o.code == 0 || !strings.Contains(o.stdout+o.stderr, "is now "+moved+", not the "+first) {
			t.Errorf("locked run after the tag moved: exit %d %s %s; want a denial naming both digests", o.code, o.stdout, o.stderr)
		}
	}
	o = h.run("lock", "test/boxed", "--json")
	if img, _ := o.envelope(t)["locked"].([]any)[0].(map[string]any)["image"].(map[string]any); img["digest"] != moved {
		t.Errorf("locked again with image %v, want %s", img, moved)
	}
}

// TestImagePruneKeepsPinned: prune keeps an image ./skills.lock pins (a
// locked skill runs exactly it) and says why; it removes the others.
func TestImagePruneKeepsPinned(t *testing.T) {
	h := imageHarness(t)
	t.Chdir(t.TempDir())
	a := pullTestImage(t, h, "a")
	b := pullTestImage(t, h, "b")
	l := lockfile.New(lockfile.Name)
	l.Set("test/boxed", lockfile.Entry{Version: "1", Digest: string(b.Digest), Tier: "project",
		Grants: lockfile.Grants{Timeout: "30s"}, Image: &lockfile.Image{Ref: "oci:image", Digest: string(a.Digest)}})
	if err := l.Save(); err != nil {
		t.Fatal(err)
	}
	o := h.run("image", "prune", "--json")
	env := o.envelope(t)
	removed, pinned := env["removed"].([]any), env["pinned"].([]any)
	if o.code != 0 || len(removed) != 1 || removed[0].(map[string]any)["digest"] != string(b.Digest) ||
		len(pinned) != 1 || pinned[0].(map[string]any)["digest"] != string(a.Digest) {
		t.Fatalf("prune with a pinned by the lockfile: %+v", o)
	}
	if _, err := os.Stat(a.Rootfs); err != nil {
		t.Fatal("prune removed a pinned image")
	}
	if o := h.run("image", "prune"); !strings.Contains(o.stdout, "kept "+a.Digest.Short()) || !strings.Contains(o.stdout, "pinned by skills.lock (test/boxed)") {
		t.Errorf("prune text: %s", o.stdout)
	}
}
