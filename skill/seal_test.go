package skill

import (
	"crypto/sha256"
	"encoding/hex"
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

// TestResolveRefusesManifestRace: a manifest replaced between Load and the
// file list newSkill digests (the window the trust review fell into: it
// showed one manifest and pinned another) is refused when the skill is
// built, so trust, lock and inspect never get a skill whose digest is not
// of the manifest they show.
func TestResolveRefusesManifestRace(t *testing.T) {
	dir := writeSkill(t, t.TempDir(), "sealed")
	b, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, map[string]string{ManifestFile: manifestFor("sealed") + "permissions:\n  network: [\"evil.example:443\"]\n"})
	entries, err := Files(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := assemble("test/sealed", TierExternal, "", b, entries)
	if errdefs.KindOf(err) != errdefs.Denied || !strings.Contains(err.Error(), "while skillbox was reading it") || !strings.Contains(err.Error(), ManifestFile) {
		t.Fatalf("got %v (skill %+v), want a denied error saying %s changed while skillbox was reading it", err, s, ManifestFile)
	}
}

// TestBundleDiffers: the files Load parsed are compared with the file list
// by content, following symlinks among the listed entries; a file that
// appears or goes between the two reads differs too.
func TestBundleDiffers(t *testing.T) {
	sum := func(s string) [32]byte { return sha256.Sum256([]byte(s)) }
	hexOf := func(s string) string { h := sum(s); return hex.EncodeToString(h[:]) }
	file := func(p, content string) FileEntry {
		return FileEntry{Path: p, Mode: ModeFile, Size: int64(len(content)), SHA256: hexOf(content)}
	}
	link := func(p, target string) FileEntry { return FileEntry{Path: p, Mode: ModeSymlink, Target: target} }
	dir := func(p string) FileEntry { return FileEntry{Path: p, Mode: ModeDir} }
	loaded := map[string][32]byte{ManifestFile: sum("m"), InstructionsFile: sum("i")}
	tests := []struct {
		name    string
		entries []FileEntry
		want    string // "" for none, else a fragment of the difference
	}{
		{"same", []FileEntry{file(InstructionsFile, "i"), file(ManifestFile, "m")}, ""},
		{"through symlinks", []FileEntry{
			file(InstructionsFile, "i"), link(ManifestFile, "meta/../real/m.yaml"),
			dir("meta"), link("real", "store"), dir("store"), file("store/m.yaml", "m"),
		}, ""},
		{"manifest edited", []FileEntry{file(InstructionsFile, "i"), file(ManifestFile, "m2")}, ManifestFile},
		{"link retargeted", []FileEntry{file(InstructionsFile, "i"), link(ManifestFile, "b.yaml"), file("a.yaml", "m"), file("b.yaml", "x")}, ManifestFile},
		{"instructions gone", []FileEntry{file(ManifestFile, "m")}, InstructionsFile},
		{"instructions now a folder", []FileEntry{dir(InstructionsFile), file(ManifestFile, "m")}, InstructionsFile},
		{"card appeared", []FileEntry{file(CardFile, "{}"), file(InstructionsFile, "i"), file(ManifestFile, "m")}, CardFile},
		{"dangling link", []FileEntry{file(InstructionsFile, "i"), link(ManifestFile, "nowhere.yaml")}, ManifestFile},
		{"link loop", []FileEntry{file(InstructionsFile, "i"), link(ManifestFile, "a"), link("a", ManifestFile)}, ManifestFile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &Bundle{read: loaded}
			got := b.differs(tt.entries)
			if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
				t.Errorf("differs = %q, want %q", got, tt.want)
			}
		})
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
