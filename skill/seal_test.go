package skill

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/skillbox-dev/skillbox/errdefs"
)

// loadSkill loads and digests the bundle in dir as the resolver does.
func loadSkill(t *testing.T, dir string) *Skill {
	t.Helper()
	s, err := newSkill("test/sealed", TierProject, "", dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSeal: the copy holds exactly the digested content (nested files,
// executable bits, symlinks; no __pycache__), with permissions the jail's
// user can read whatever the umask, and a second Seal reuses it.
func TestSeal(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symlinks and modes")
	}
	dir := writeSkill(t, t.TempDir(), "sealed")
	writeFiles(t, dir, map[string]string{
		"lib/helper.py":             "VALUE = 1\n",
		"data/table.csv":            "a,b\n",
		"__pycache__/skill.cpython": "junk",
	})
	os.Chmod(filepath.Join(dir, "lib/helper.py"), 0o700)
	os.Symlink("lib/helper.py", filepath.Join(dir, "helper_link.py"))
	s := loadSkill(t, dir)

	old := syscall.Umask(0o077)
	store := filepath.Join(t.TempDir(), "bundles")
	sealed, err := Seal(s, store)
	syscall.Umask(old)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(store, strings.TrimPrefix(s.Digest, "sha256:")); sealed != want {
		t.Errorf("sealed at %s, want %s", sealed, want)
	}
	if d, err := Digest(sealed); err != nil || d != s.Digest {
		t.Errorf("copy's digest %s %v, want %s", d, err, s.Digest)
	}
	for p, want := range map[string]os.FileMode{".": 0o755, "lib": 0o755, "skill.py": 0o644, "lib/helper.py": 0o755} {
		if fi, err := os.Stat(filepath.Join(sealed, p)); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v %v, want %v", p, fi.Mode().Perm(), err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(sealed, "__pycache__")); !os.IsNotExist(err) {
		t.Errorf("__pycache__ copied: %v", err)
	}
	if target, err := os.Readlink(filepath.Join(sealed, "helper_link.py")); err != nil || target != "lib/helper.py" {
		t.Errorf("symlink: %q %v", target, err)
	}

	// Once sealed, the copy is what runs for this digest, whatever the
	// folder holds now; nothing else is left in the store.
	writeFiles(t, dir, map[string]string{"lib/helper.py": "VALUE = 2\n"})
	again, err := Seal(s, store)
	if err != nil || again != sealed {
		t.Fatalf("second seal: %s %v, want %s", again, err, sealed)
	}
	if b, _ := os.ReadFile(filepath.Join(sealed, "lib/helper.py")); string(b) != "VALUE = 1\n" {
		t.Errorf("sealed helper changed to %q", b)
	}
	if ents, _ := os.ReadDir(store); len(ents) != 1 {
		t.Errorf("store holds %d entries, want 1", len(ents))
	}
}

// TestSealRefusesChange: a bundle that changes after it was digested (the
// window between the trust check and the run) is refused, not copied.
func TestSealRefusesChange(t *testing.T) {
	dir := writeSkill(t, t.TempDir(), "sealed")
	s := loadSkill(t, dir)
	writeFiles(t, dir, map[string]string{CodeFile: "import os  # swapped after the trust check\n"})
	store := t.TempDir()
	_, err := Seal(s, store)
	if errdefs.KindOf(err) != errdefs.Denied || !strings.Contains(err.Error(), "changed") {
		t.Fatalf("got %v, want a denied error saying the skill changed", err)
	}
	if ents, _ := os.ReadDir(store); len(ents) != 0 {
		t.Errorf("store holds %d entries after a refused seal", len(ents))
	}
}

// TestSealRefusesManifestRace: the manifest Load parsed (whose permissions
// the policy decided on) must be the one digested and copied.
func TestSealRefusesManifestRace(t *testing.T) {
	dir := writeSkill(t, t.TempDir(), "sealed")
	b, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	// The manifest changes between Load and Digest.
	writeFiles(t, dir, map[string]string{ManifestFile: manifestFor("sealed") + "permissions:\n  network: [\"evil.example:443\"]\n"})
	digest, err := Digest(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := &Skill{ID: "test/sealed", Dir: dir, Bundle: b, Digest: digest}
	_, err = Seal(s, t.TempDir())
	if errdefs.KindOf(err) != errdefs.Denied || !strings.Contains(err.Error(), ManifestFile) {
		t.Fatalf("got %v, want a denied error naming %s", err, ManifestFile)
	}
}

// TestSealConcurrent: sealers of one digest agree on one folder and leave
// no temporary folder behind.
func TestSealConcurrent(t *testing.T) {
	dir := writeSkill(t, t.TempDir(), "sealed")
	writeFiles(t, dir, map[string]string{"big.txt": strings.Repeat("x", 1<<20)})
	s := loadSkill(t, dir)
	store := t.TempDir()
	var wg sync.WaitGroup
	got := make([]string, 8)
	for i := range got {
		wg.Go(func() {
			var err error
			if got[i], err = Seal(s, store); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for _, g := range got {
		if g != got[0] {
			t.Errorf("sealers disagree: %s vs %s", g, got[0])
		}
	}
	if ents, _ := os.ReadDir(store); len(ents) != 1 {
		t.Errorf("store holds %d entries, want 1", len(ents))
	}
}
