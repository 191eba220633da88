package pyinterp

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// A pyenv shim is a bash script written by `pyenv rehash` from one
// template: it exports a fixed PYENV_ROOT and execs `pyenv exec <name>`.
// Which interpreter that runs is pyenv's decision, made by its bash code
// (and its plugins' hooks) from the variables Resolve passes (HOME,
// PYENV_ROOT, PYENV_VERSION), the working directory's `.python-version`
// (walking up to /), $PYENV_ROOT/version and what is installed. pyenvKey
// identifies all of that without running pyenv; see the package comment
// for what it assumes.

// shimTemplates are the shims pyenv-rehash writes, with @ROOT@ for
// $PYENV_ROOT and @PYENV@ for the pyenv executable. A script that matches
// none exactly is an unknown launcher and is never cached.
var shimTemplates = []string{
	// pyenv >= 2.4.x
	`#!/usr/bin/env bash
set -e
[ -n "$PYENV_DEBUG" ] && set -x

program="${0##*/}"

export PYENV_ROOT="@ROOT@"
SHIM_PATH=${0%/*}
if [[ $SHIM_PATH != "@ROOT@/shims" ]]; then
  export _PYENV_SHIM_PATH="$SHIM_PATH"
fi
exec "@PYENV@" exec "$program" "$@"
`,
	// The same without the custom shim path (earlier pyenv 2.x).
	`#!/usr/bin/env bash
set -e
[ -n "$PYENV_DEBUG" ] && set -x

program="${0##*/}"

export PYENV_ROOT="@ROOT@"
exec "@PYENV@" exec "$program" "$@"
`,
}

// pyenvShim is what a shim fixes: the root it exports and the pyenv it runs.
type pyenvShim struct{ root, pyenv string }

// parseShim recognises a pyenv shim by rendering the templates with the
// root and pyenv it names and comparing byte for byte.
func parseShim(script string) (pyenvShim, bool) {
	root, ok := between(script, "\nexport PYENV_ROOT=\"", "\"\n")
	if !ok {
		return pyenvShim{}, false
	}
	pyenv, ok := between(script, "\nexec \"", "\" exec \"$program\" \"$@\"\n")
	if !ok {
		return pyenvShim{}, false
	}
	for _, s := range []string{root, pyenv} {
		// Quoted by the template but expanded by bash: only plain
		// absolute paths have an obvious meaning.
		if !filepath.IsAbs(s) || strings.ContainsAny(s, "\"$`\\\n!") {
			return pyenvShim{}, false
		}
	}
	r := strings.NewReplacer("@ROOT@", root, "@PYENV@", pyenv)
	for _, t := range shimTemplates {
		if script == r.Replace(t) {
			// pyenv strips one trailing slash from PYENV_ROOT.
			return pyenvShim{root: strings.TrimSuffix(root, "/"), pyenv: pyenv}, true
		}
	}
	return pyenvShim{}, false
}

func between(s, start, end string) (string, bool) {
	_, rest, ok := strings.Cut(s, start)
	if !ok {
		return "", false
	}
	v, _, ok := strings.Cut(rest, end)
	return v, ok && !strings.Contains(v, "\n")
}

// pyenvHookCommands are the pyenv commands whose hooks can run while a
// shim resolves (pyenv-exec, -which, -version-name, -version-origin).
var pyenvHookCommands = []string{"exec", "which", "version-name", "version-origin"}

// pyenvKey adds to k everything pyenv (libexec/pyenv, pyenv-exec,
// pyenv-which, pyenv-version-name, pyenv-version-file,
// pyenv-version-file-read, pyenv-prefix, pyenv-latest and the hooks)
// consults to choose the interpreter a shim execs:
//
//   - the variables passed to it;
//   - its code: every file of its libexec and of every plugin's bin, and
//     every hook for the commands above in every hook directory pyenv
//     searches (what is absent is recorded too, so a new hook counts);
//   - the installed versions: $PYENV_ROOT/versions and each entry and its
//     bin (a version gaining or losing an executable);
//   - the directories of the PATH the shim gets, searched for the
//     `system` version and for the tools pyenv's scripts run;
//   - the version files: the first `.python-version` found walking up
//     from the physical working directory (as pyenv-version-file does) and
//     $PYENV_ROOT/version, by content.
//
// Version names with a '/' or "..", which pyenv resolves by changing into
// directories below versions/, are not cached.
func pyenvKey(k *keyBuilder, sh pyenvShim) {
	version := os.Getenv("PYENV_VERSION")
	k.line("env", "HOME="+os.Getenv("HOME"), "PYENV_ROOT="+os.Getenv("PYENV_ROOT"), "PYENV_VERSION="+version)
	k.versionName("PYENV_VERSION", version)
	k.line("shim", sh.root, sh.pyenv)

	k.stat(sh.pyenv)
	real, err := filepath.EvalSymlinks(sh.pyenv)
	if err != nil {
		k.fail("pyenv: " + err.Error())
		return
	}
	// libexec/pyenv finds its install prefix from its own real path.
	prefix := filepath.Dir(filepath.Dir(real))
	k.line("install-prefix", prefix)
	k.tree(filepath.Join(prefix, "libexec"), 1)

	pluginDirs := []string{filepath.Join(prefix, "plugins")}
	hookBases := []string{filepath.Join(sh.root, "pyenv.d")}
	if prefix != sh.root {
		pluginDirs = append(pluginDirs, filepath.Join(sh.root, "plugins"))
		hookBases = append(hookBases, filepath.Join(prefix, "pyenv.d"))
	}
	hookBases = append(hookBases, "/usr/etc/pyenv.d", "/usr/local/etc/pyenv.d", "/etc/pyenv.d", "/usr/lib/pyenv/hooks")
	for i, dir := range pluginDirs {
		k.stat(dir)
		for _, name := range k.names(dir) {
			k.tree(filepath.Join(dir, name, "bin"), 1)
			if i == len(pluginDirs)-1 {
				// Plugin hooks come from $PYENV_ROOT/plugins only.
				hookBases = append(hookBases, filepath.Join(dir, name, "etc", "pyenv.d"))
			}
		}
	}
	for _, base := range hookBases {
		for _, cmd := range pyenvHookCommands {
			k.tree(filepath.Join(base, cmd), 3)
		}
	}

	versions := filepath.Join(sh.root, "versions")
	k.stat(versions)
	for _, name := range k.names(versions) {
		k.stat(filepath.Join(versions, name))
		k.stat(filepath.Join(versions, name, "bin"))
	}
	for _, dir := range filepath.SplitList(childPATH) {
		k.stat(dir)
	}

	wd, err := physicalWd()
	if err != nil {
		k.fail("working directory: " + err.Error())
		return
	}
	k.versionFile("local", localVersionFile(wd))
	k.versionFile("global", filepath.Join(sh.root, "version"))
}

// localVersionFile mirrors pyenv-version-file: the first `.python-version`
// that is a regular file (symlinks followed) in dir or a parent, or "".
func localVersionFile(dir string) string {
	for {
		p := filepath.Join(dir, ".python-version")
		if fileID(p, true, 1).regular {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// versionFile adds a version file by path and content.
func (k *keyBuilder) versionFile(what, path string) {
	if path == "" {
		k.line(what, "none")
		return
	}
	st := k.stat(path)
	if !st.regular {
		return
	}
	b, err := os.ReadFile(path)
	if err != nil || len(b) > 64<<10 {
		k.fail("version file " + path + " unreadable or too large")
		return
	}
	sum := sha256.Sum256(b)
	k.line(what, path, hex.EncodeToString(sum[:]))
	k.versionName(path, string(b))
}

// versionName refuses version names pyenv resolves below versions/.
func (k *keyBuilder) versionName(where, v string) {
	if strings.Contains(v, "/") || strings.Contains(v, "..") {
		k.fail(where + " names a version by path")
	}
}

// names lists dir sorted; a missing or unreadable dir has none (its
// identity is recorded by the caller).
func (k *keyBuilder) names(dir string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	slices.Sort(out)
	return out
}

// maxTreeEntries bounds what tree records; a larger tree is not cached.
const maxTreeEntries = 4096

// tree records path (the link itself and what it points to) and, when it
// is a directory and depth > 0, its entries down to depth levels.
func (k *keyBuilder) tree(path string, depth int) {
	k.lstat(path)
	st := k.stat(path)
	if !st.dir || depth == 0 {
		return
	}
	for _, name := range k.names(path) {
		if k.entries++; k.entries > maxTreeEntries {
			k.fail("too many files under " + path)
			return
		}
		k.tree(filepath.Join(path, name), depth-1)
	}
}
