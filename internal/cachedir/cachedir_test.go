//go:build unix

package cachedir

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDir(t *testing.T) {
	if d, err := Dir(env(map[string]string{"XDG_CACHE_HOME": "/x/cache", "HOME": "/home/u"})); err != nil || d != "/x/cache/skillbox" {
		t.Errorf("XDG_CACHE_HOME: %q %v", d, err)
	}
	// A relative XDG_CACHE_HOME is ignored, as the XDG spec says.
	if d, err := Dir(env(map[string]string{"XDG_CACHE_HOME": "rel", "HOME": "/home/u"})); err != nil || d != "/home/u/.cache/skillbox" {
		t.Errorf("HOME: %q %v", d, err)
	}
}

// TestPrivate: the temporary-directory fallback is created 0700 and refused
// when it is a symlink or open to others.
func TestPrivate(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "c")
	if err := private(dir); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("created %v %v, want 0700", fi.Mode(), err)
	}
	if err := private(dir); err != nil {
		t.Errorf("second call: %v", err)
	}
	os.Chmod(dir, 0o777)
	if err := private(dir); err == nil || !strings.Contains(err.Error(), "open to other users") {
		t.Errorf("world-writable: %v", err)
	}
	link := filepath.Join(base, "l")
	os.Symlink(dir, link)
	if err := private(link); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("symlink: %v", err)
	}
	if os.Geteuid() == 0 {
		other := filepath.Join(base, "o")
		os.Mkdir(other, 0o700)
		os.Chown(other, 65534, 65534)
		if err := private(other); err == nil || !strings.Contains(err.Error(), "belongs to uid 65534") {
			t.Errorf("foreign owner: %v", err)
		}
	}
}
