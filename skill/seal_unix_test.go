//go:build unix

package skill

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestSeal: the copy holds exactly the digested content (nested files,
// executable bits, symlinks; no __pycache__), with permissions the jail's
// user can read whatever the umask, and a second Seal reuses it.
func TestSeal(t *testing.T) {
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
