//go:build unix

package userdir

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDirs(t *testing.T) {
	full := env(map[string]string{"XDG_CACHE_HOME": "/x/cache", "XDG_CONFIG_HOME": "/x/config", "XDG_STATE_HOME": "/x/state", "HOME": "/home/u"})
	if d, err := Cache(full); err != nil || d != "/x/cache/skillbox" {
		t.Errorf("Cache: %q %v", d, err)
	}
	if d := Config(full); d != "/x/config/skillbox" {
		t.Errorf("Config: %q", d)
	}
	if d, err := State(full); err != nil || d != "/x/state/skillbox" {
		t.Errorf("State: %q %v", d, err)
	}
	// Relative XDG variables are ignored, as the XDG spec says.
	rel := env(map[string]string{"XDG_CACHE_HOME": "c", "XDG_CONFIG_HOME": "c", "XDG_STATE_HOME": "s", "HOME": "/home/u"})
	if d, err := Cache(rel); err != nil || d != "/home/u/.cache/skillbox" {
		t.Errorf("Cache from HOME: %q %v", d, err)
	}
	if d := Config(rel); d != "/home/u/.config/skillbox" {
		t.Errorf("Config from HOME: %q", d)
	}
	if d, err := State(rel); err != nil || d != "/home/u/.local/state/skillbox" {
		t.Errorf("State from HOME: %q %v", d, err)
	}
}

// TestNoHome: without an absolute HOME nothing is relative to the working
// directory: no configuration at all, and cache and state in the private
// temporary folder. (The account's home from os.UserHomeDir is HOME itself
// on Unix, so an empty HOME leaves none.)
func TestNoHome(t *testing.T) {
	t.Setenv("HOME", "")
	t.Setenv("TMPDIR", t.TempDir())
	none := env(map[string]string{"HOME": "relative/home"})
	if d := Config(none); d != "" {
		t.Errorf("Config without HOME = %q, want none", d)
	}
	want := filepath.Join(os.TempDir(), "skillbox-"+strconv.Itoa(os.Geteuid()))
	for name, f := range map[string]func(func(string) string) (string, error){"Cache": Cache, "State": State} {
		if d, err := f(none); err != nil || d != want {
			t.Errorf("%s without HOME = %q %v, want %s", name, d, err, want)
		}
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
