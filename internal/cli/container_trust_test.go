package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
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
	tagSkill(t, ext, ref)
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

// TestFirstPinOfTag: a container skill nothing pins (external, run with
// --trust-remote-code) runs the image its tag resolved to when this
// version of it first ran; once the tag moves, a call is denied (exit 3,
// audited) naming `skillbox image pull REF`, which re-pins the tag (on
// stderr, in --json and in the audit log), after which the call runs the
// new image. The test images have no Python: the calls that get past the
// pin fail on that (invalid), which shows the pin let them through.
func TestFirstPinOfTag(t *testing.T) {
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		t.Skip("container skills need Linux and root here")
	}
	h := newHarness(t)
	ext := h.external()
	t.Setenv("XDG_CACHE_HOME", h.env["XDG_CACHE_HOME"]) // the linux backend's image cache
	ref := imagetest.Registry(t) + "/skills/tiny:1"
	first := imagetest.Push(t, ref, imagetest.Tiny(t, "first"))
	tagSkill(t, ext, ref)
	run := func() outcome {
		return h.run("run", "test/boxed", "--backend", "linux", "--trust-remote-code", "--json")
	}
	if o := run(); o.code != 2 || !strings.Contains(o.stdout, "python") {
		t.Fatalf("first run: exit %d %s %s; want invalid for the image's missing python", o.code, o.stdout, o.stderr)
	}
	moved := imagetest.Push(t, ref, imagetest.Tiny(t, "moved"))
	o := run()
	if o.code != 3 || !strings.Contains(o.stdout, "now resolves to "+moved+", not the "+first) || !strings.Contains(o.stdout, "skillbox image pull "+ref) {
		t.Fatalf("run after the tag moved: exit %d %s %s; want denied naming both digests and image pull", o.code, o.stdout, o.stderr)
	}
	o = h.run("image", "pull", ref, "--json")
	if o.code != 0 || !strings.Contains(o.stderr, "image: re-pinned "+ref+" for test/boxed") {
		t.Fatalf("image pull: exit %d %s %s", o.code, o.stdout, o.stderr)
	}
	rep, _ := o.envelope(t)["repinned"].([]any)
	if len(rep) != 1 || rep[0].(map[string]any)["digest"] != moved || rep[0].(map[string]any)["previous"] != first {
		t.Errorf("image pull --json repinned: %v", rep)
	}
	if o := run(); o.code != 2 {
		t.Errorf("run after the re-pin: exit %d %s %s; want past the pin (invalid: no python)", o.code, o.stdout, o.stderr)
	}
	if o := h.run("image", "pull", ref, "--json"); o.code != 0 || strings.Contains(o.stderr, "re-pinned") {
		t.Errorf("pulling the same image again: exit %d %s; want nothing re-pinned", o.code, o.stderr)
	}
	data, err := os.ReadFile(filepath.Join(h.env["XDG_STATE_HOME"], "skillbox", "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var denied, repinned bool
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var r map[string]any
		json.Unmarshal([]byte(l), &r)
		denied = denied || r["event"] == "denied" && strings.Contains(r["error"].(string), "now resolves to "+moved)
		repinned = repinned || r["event"] == "image_pin" && r["skill"] == "test/boxed" && strings.Contains(r["detail"].(string), moved+", was "+first)
	}
	if !denied || !repinned {
		t.Errorf("audit log: denial recorded %v, re-pin recorded %v:\n%s", denied, repinned, data)
	}
}

// tagSkill writes test/boxed into the skill root ext: a container skill
// whose image is the registry reference ref.
func tagSkill(t *testing.T, ext, ref string) {
	t.Helper()
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
}
