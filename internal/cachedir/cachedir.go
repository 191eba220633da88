// Package cachedir finds skillbox's cache folder: where the bundled example
// skills are materialised, sealed skill bundles are kept and the Pyodide
// runtime is installed. What is in it gets run, so it must be the user's own.
package cachedir

import (
	"fmt"
	"os"
	"path/filepath"
)

// Dir returns "$XDG_CACHE_HOME/skillbox" when XDG_CACHE_HOME is absolute,
// else "$HOME/.cache/skillbox" (HOME as getenv gives it, else the account's
// home). With neither, it is a private folder "skillbox-<uid>" in the
// temporary directory, created 0700 if missing and refused if it is not a
// directory this user owns and no one else may enter: a shared /tmp must
// not let another user plant the skills this user runs.
func Dir(getenv func(string) string) (string, error) {
	if d := getenv("XDG_CACHE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "skillbox"), nil
	}
	home := getenv("HOME")
	if !filepath.IsAbs(home) {
		home, _ = os.UserHomeDir()
	}
	if filepath.IsAbs(home) {
		return filepath.Join(home, ".cache", "skillbox"), nil
	}
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("skillbox-%d", os.Geteuid()))
	if err := private(dir); err != nil {
		return "", fmt.Errorf("no cache folder: neither XDG_CACHE_HOME nor HOME is set, and %w", err)
	}
	return dir, nil
}
