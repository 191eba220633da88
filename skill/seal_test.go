package skill

import (
	"os"
	"strings"
	"sync"
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
