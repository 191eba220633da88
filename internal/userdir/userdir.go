// Package userdir finds skillbox's per-user folders: the cache (where the
// bundled example skills are materialised, sealed bundles kept and the
// Pyodide runtime installed), the configuration (policy file, trust store)
// and the state (audit log).
//
// Each comes from its XDG variable when that is absolute, else from HOME.
// Never from a relative path: without HOME, "~/.config" would be a folder of
// whatever directory skillbox was started in, and a checkout could then ship
// the policy and trust store that let its own skills run.
package userdir

import (
	"fmt"
	"os"
	"path/filepath"
)

// home is HOME as getenv gives it, else the account's home; "" unless
// absolute.
func home(getenv func(string) string) string {
	h := getenv("HOME")
	if !filepath.IsAbs(h) {
		h, _ = os.UserHomeDir()
	}
	if !filepath.IsAbs(h) {
		return ""
	}
	return h
}

// base is $xdg when absolute, else $HOME/rel, else "".
func base(getenv func(string) string, xdg string, rel ...string) string {
	if d := getenv(xdg); filepath.IsAbs(d) {
		return d
	}
	if h := home(getenv); h != "" {
		return filepath.Join(append([]string{h}, rel...)...)
	}
	return ""
}

// Cache returns "$XDG_CACHE_HOME/skillbox", else "$HOME/.cache/skillbox".
// With neither, it is a private folder "skillbox-<uid>" in the temporary
// directory, created 0700 if missing and refused if it is not a directory
// this user owns and no one else may enter: what is cached gets run, and a
// shared /tmp must not let another user plant it.
func Cache(getenv func(string) string) (string, error) {
	if b := base(getenv, "XDG_CACHE_HOME", ".cache"); b != "" {
		return filepath.Join(b, "skillbox"), nil
	}
	dir, err := privateTemp()
	if err != nil {
		return "", fmt.Errorf("no cache folder: neither XDG_CACHE_HOME nor HOME is set, and %w", err)
	}
	return dir, nil
}

// Config returns "$XDG_CONFIG_HOME/skillbox", else "$HOME/.config/skillbox",
// else "": without either there is no configuration (no policy file, an
// empty trust store that cannot be written).
func Config(getenv func(string) string) string {
	if b := base(getenv, "XDG_CONFIG_HOME", ".config"); b != "" {
		return filepath.Join(b, "skillbox")
	}
	return ""
}

// State returns "$XDG_STATE_HOME/skillbox", else
// "$HOME/.local/state/skillbox", else the private temporary folder Cache
// would use, with the same checks.
func State(getenv func(string) string) (string, error) {
	if b := base(getenv, "XDG_STATE_HOME", ".local", "state"); b != "" {
		return filepath.Join(b, "skillbox"), nil
	}
	dir, err := privateTemp()
	if err != nil {
		return "", fmt.Errorf("no state folder: neither XDG_STATE_HOME nor HOME is set, and %w", err)
	}
	return dir, nil
}

// privateTemp is "skillbox-<uid>" in the temporary directory, made private.
func privateTemp() (string, error) {
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("skillbox-%d", os.Geteuid()))
	if err := private(dir); err != nil {
		return "", err
	}
	return dir, nil
}
