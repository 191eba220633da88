package pyinterp

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain doubles as a fake interpreter: a copy of the test binary run as
// `python3 -I -c PROBE` answers the probe (see fakePython). Tests use a
// private cache folder, never the user's.
func TestMain(m *testing.M) {
	if len(os.Args) == 4 && os.Args[1] == "-I" && os.Args[2] == "-c" {
		if target, err := os.ReadFile(os.Args[0] + ".launches"); err == nil {
			// A binary launcher: runs another interpreter.
			cmd := exec.Command(string(target), os.Args[1:]...)
			cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
			if cmd.Run() != nil {
				os.Exit(1)
			}
			return
		}
		fakePython()
		return
	}
	dir, err := os.MkdirTemp("", "pyinterp-cache-")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_CACHE_HOME", dir) // the tests' own cache folder, never the user's
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// fakePython answers the probe for an interpreter installed by fakeInterp:
// its prefix is two levels above the binary, its sys.path is prefix/lib
// and it would add prefix/share/site-packages if that existed; both are its
// site directories (as Debian's dist-packages is on sys.path).
// Each run appends a byte to the file named in <binary>.counter, which
// lies outside everything the cache watches.
func fakePython() {
	exe, err := os.Executable()
	if err == nil {
		exe, err = filepath.EvalSymlinks(exe)
	}
	if err != nil {
		os.Exit(3)
	}
	if name, err := os.ReadFile(exe + ".counter"); err == nil {
		if f, err := os.OpenFile(string(name), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600); err == nil {
			f.Write([]byte{'x'})
			f.Close()
		}
	}
	invoked, _ := filepath.Abs(os.Args[0])
	prefix := filepath.Dir(filepath.Dir(exe))
	lib := filepath.Join(prefix, "lib")
	paths := []string{} // like the probe: the sys.path entries that exist
	if fi, err := os.Stat(lib); err == nil && fi.IsDir() {
		paths = append(paths, lib)
	}
	json.NewEncoder(os.Stdout).Encode(map[string]any{
		"executable": exe, "version": "3.99.0", "prefix": prefix, "base_prefix": prefix,
		"paths": paths, "invoked": invoked,
		"watch": []string{lib, filepath.Join(prefix, "share", "site-packages")},
		"sites": []string{lib, filepath.Join(prefix, "share", "site-packages")},
	})
}

// fakeInterp installs a fake interpreter as prefix/bin/python3 and returns
// its path and a function counting how often it has run.
func fakeInterp(t *testing.T, prefix string) (string, func() int) {
	t.Helper()
	bin := filepath.Join(prefix, "bin")
	for _, d := range []string{"lib", "share"} {
		if err := os.MkdirAll(filepath.Join(prefix, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	exe := filepath.Join(bin, "python3")
	copyTestBinary(t, exe)
	counter := filepath.Join(t.TempDir(), "runs")
	if err := os.WriteFile(exe+".counter", []byte(counter), 0o644); err != nil {
		t.Fatal(err)
	}
	return exe, func() int {
		b, _ := os.ReadFile(counter)
		return len(b)
	}
}

func copyTestBinary(t *testing.T, dst string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// freshCache gives the test an empty cache folder and trusts identities
// at once (files here are created just before they are resolved).
func freshCache(t *testing.T) string {
	t.Helper()
	if !statSupported {
		t.Skip("no persistent cache on this platform")
	}
	dir := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", dir)
	t.Setenv(NoCacheEnvVar, "")
	testTuning = tuning{racyWindow: 0, timeResolution: 1}
	return filepath.Join(dir, "skillbox", cacheFileName)
}

// resolveFresh resolves name as a new CLI process would: with an empty
// in-memory cache.
func resolveFresh(t *testing.T, name string) *Interpreter {
	t.Helper()
	cacheMu.Lock()
	clear(cache)
	cacheMu.Unlock()
	in, err := resolve(context.Background(), name, testTuning)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// testTuning is the disk cache's tuning in resolveFresh: freshCache sets
// it to trust identities at once (files here are created just before they
// are resolved); a test may change it after that.
var testTuning = defaultTuning

// expectRuns resolves name and checks the interpreter it gets and how
// often the fake interpreter has run by then.
func expectRuns(t *testing.T, name, wantExe string, runs func() int, want int) {
	t.Helper()
	in := resolveFresh(t, name)
	if in.Executable != wantExe {
		t.Errorf("resolved %s, want %s", in.Executable, wantExe)
	}
	if got := runs(); got != want {
		t.Errorf("interpreter ran %d times, want %d", got, want)
	}
}

func TestCacheHitSkipsInterpreter(t *testing.T) {
	file := freshCache(t)
	py, runs := fakeInterp(t, t.TempDir())
	first := resolveFresh(t, py)
	second := resolveFresh(t, py)
	if n := runs(); n != 1 {
		t.Fatalf("interpreter ran %d times for two resolutions, want 1", n)
	}
	a, _ := json.Marshal(first)
	b, _ := json.Marshal(second)
	if string(a) != string(b) || first.Loader != second.Loader || fmt.Sprint(first.Libs) != fmt.Sprint(second.Libs) {
		t.Errorf("cached answer differs:\n%s %s %v\n%s %s %v", a, first.Loader, first.Libs, b, second.Loader, second.Libs)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("cache file %s: %v, %v; want mode 0600", file, fi, err)
	}
}

// TestCacheInvalidation changes one thing an answer depends on at a time
// and expects the interpreter to run again. The interpreter is run through
// a symlink, as a venv's is. All but the last two changes are caught only
// by re-checking the entry's dependencies (none is part of the key).
func TestCacheInvalidation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, prefix, venv, exe string)
	}{
		{"pth file edited", func(t *testing.T, prefix, _, _ string) {
			f, err := os.OpenFile(filepath.Join(prefix, "lib", "extra.pth"), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString("/elsewhere\n")
			f.Close()
		}},
		{"pth file appears", func(t *testing.T, prefix, _, _ string) {
			if err := os.WriteFile(filepath.Join(prefix, "lib", "more.pth"), []byte("/elsewhere\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"sitecustomize appears", func(t *testing.T, prefix, _, _ string) {
			if err := os.WriteFile(filepath.Join(prefix, "lib", "sitecustomize.py"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"pybuilddir.txt appears", func(t *testing.T, _, _, exe string) {
			if err := os.WriteFile(filepath.Join(filepath.Dir(exe), "pybuilddir.txt"), []byte("build\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"site dir appears", func(t *testing.T, prefix, _, _ string) {
			if err := os.Mkdir(filepath.Join(prefix, "share", "site-packages"), 0o755); err != nil {
				t.Fatal(err)
			}
		}},
		{"pyvenv.cfg appears", func(t *testing.T, _, venv, _ string) {
			if err := os.WriteFile(filepath.Join(venv, "pyvenv.cfg"), []byte("home = /usr/bin\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"sys.path dir removed", func(t *testing.T, prefix, _, _ string) {
			if err := os.RemoveAll(filepath.Join(prefix, "lib")); err != nil {
				t.Fatal(err)
			}
		}},
		{"touch executable", func(t *testing.T, _, _, exe string) {
			now := time.Now()
			if err := os.Chtimes(exe, now, now); err != nil {
				t.Fatal(err)
			}
		}},
		{"replace executable", func(t *testing.T, _, _, exe string) {
			tmp := filepath.Join(t.TempDir(), "python3")
			copyTestBinary(t, tmp)
			if err := os.Rename(tmp, exe); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			freshCache(t)
			prefix := t.TempDir()
			exe, runs := fakeInterp(t, prefix)
			if err := os.WriteFile(filepath.Join(prefix, "lib", "extra.pth"), []byte("# nothing\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			venv := t.TempDir()
			py := filepath.Join(venv, "bin", "python3")
			if err := os.Mkdir(filepath.Dir(py), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(exe, py); err != nil {
				t.Fatal(err)
			}
			resolveFresh(t, py)
			resolveFresh(t, py)
			if n := runs(); n != 1 {
				t.Fatalf("before the change the interpreter ran %d times, want 1", n)
			}
			tc.change(t, prefix, venv, exe)
			resolveFresh(t, py)
			if n := runs(); n != 2 {
				t.Fatalf("after %s the interpreter ran %d times, want 2 (the cached answer was reused)", tc.name, n)
			}
			resolveFresh(t, py)
			if n := runs(); n != 2 {
				t.Fatalf("the new answer was not cached: %d runs, want 2", n)
			}
		})
	}
}

// TestCacheSurvivesUnrelatedInstalls changes what installing other
// programs and packages changes, and expects the cached answer to stay:
// programs beside the interpreter (any package install adds to /usr/bin)
// and packages in a site directory do not change the interpreter's facts.
func TestCacheSurvivesUnrelatedInstalls(t *testing.T) {
	freshCache(t)
	prefix := t.TempDir()
	exe, runs := fakeInterp(t, prefix)
	venv := t.TempDir()
	py := filepath.Join(venv, "bin", "python3")
	if err := os.Mkdir(filepath.Dir(py), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(exe, py); err != nil {
		t.Fatal(err)
	}
	resolveFresh(t, py)
	for _, f := range []string{
		filepath.Join(prefix, "bin", "some-tool"),        // a program beside the interpreter
		filepath.Join(venv, "bin", "some-script"),        // a console script beside the link
		filepath.Join(prefix, "lib", "somepkg.py"),       // a module in a site directory
		filepath.Join(prefix, "lib", "otherpkg", "x.py"), // a package there
	} {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte("#\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A later timestamp on the folders, as a real install leaves.
	later := time.Now().Add(time.Minute)
	for _, d := range []string{filepath.Join(prefix, "bin"), filepath.Join(venv, "bin"), filepath.Join(prefix, "lib")} {
		if err := os.Chtimes(d, later, later); err != nil {
			t.Fatal(err)
		}
	}
	resolveFresh(t, py)
	if n := runs(); n != 1 {
		t.Fatalf("the interpreter ran %d times, want 1: an unrelated install threw the cached answer away", n)
	}
}

func TestCacheCorruptFileIgnored(t *testing.T) {
	for _, content := range []string{"{not json", `{"format":"someone-else/9","entries":[]}`, "\x00\x01\x02"} {
		file := freshCache(t)
		py, runs := fakeInterp(t, t.TempDir())
		if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		resolveFresh(t, py)
		var c cacheFile
		if b, err := os.ReadFile(file); err != nil || json.Unmarshal(b, &c) != nil || c.Format != cacheFormat || len(c.Entries) != 1 {
			t.Fatalf("cache holding %q was not rewritten: %s %v", content, b, err)
		}
		resolveFresh(t, py)
		if n := runs(); n != 1 {
			t.Fatalf("cache holding %q: interpreter ran %d times, want 1", content, n)
		}
	}
}

// TestCacheForgedEntryRejected edits a stored entry the way a forger
// would: claiming another executable, or dropping the dependencies.
func TestCacheForgedEntryRejected(t *testing.T) {
	for _, tc := range []struct {
		name  string
		forge func(e *cacheEntry)
	}{
		{"other executable", func(e *cacheEntry) { e.Interp.Executable = "/bin/sh" }},
		{"extra path", func(e *cacheEntry) { e.Interp.Paths = append(e.Interp.Paths, "/etc") }},
		{"no deps", func(e *cacheEntry) { e.Deps = nil }},
		{"stale dep", func(e *cacheEntry) { e.Deps[0].ID = "absent" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := freshCache(t)
			py, runs := fakeInterp(t, t.TempDir())
			resolveFresh(t, py)
			c := readCache(file)
			if len(c.Entries) != 1 {
				t.Fatalf("%d entries, want 1", len(c.Entries))
			}
			tc.forge(&c.Entries[0])
			b, _ := json.Marshal(c)
			if err := os.WriteFile(file, b, 0o600); err != nil {
				t.Fatal(err)
			}
			in := resolveFresh(t, py)
			if n := runs(); n != 2 || in.Executable == "/bin/sh" || len(in.Paths) != 1 {
				t.Fatalf("forged entry used: %d runs, %+v", n, in)
			}
		})
	}
}

func TestCacheForeignFileIgnored(t *testing.T) {
	file := freshCache(t)
	py, runs := fakeInterp(t, t.TempDir())
	resolveFresh(t, py)
	if err := os.Chmod(file, 0o622); err != nil {
		t.Fatal(err)
	}
	resolveFresh(t, py)
	if n := runs(); n != 2 {
		t.Fatalf("a cache others can write was used: %d runs, want 2", n)
	}
	if os.Geteuid() != 0 {
		return
	}
	if err := os.Chown(file, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	resolveFresh(t, py)
	if n := runs(); n != 3 {
		t.Fatalf("a cache owned by someone else was used: %d runs, want 3", n)
	}
}

func TestCacheBypass(t *testing.T) {
	file := freshCache(t)
	t.Setenv(NoCacheEnvVar, "1")
	py, runs := fakeInterp(t, t.TempDir())
	resolveFresh(t, py)
	resolveFresh(t, py)
	if n := runs(); n != 2 {
		t.Fatalf("with %s=1 the interpreter ran %d times, want 2", NoCacheEnvVar, n)
	}
	if _, err := os.Stat(file); err == nil {
		t.Fatalf("with %s=1 the cache was written", NoCacheEnvVar)
	}
}

// TestCacheRacy: an interpreter installed just now is not cached, since a
// second change within the same timestamp tick could go unseen.
func TestCacheRacy(t *testing.T) {
	freshCache(t)
	testTuning.racyWindow = time.Hour
	py, runs := fakeInterp(t, t.TempDir())
	resolveFresh(t, py)
	resolveFresh(t, py)
	if n := runs(); n != 2 {
		t.Fatalf("a just-installed interpreter was cached: %d runs, want 2", n)
	}
}

func TestCacheUnknownLauncher(t *testing.T) {
	freshCache(t)
	dir := t.TempDir()
	py, runs := fakeInterp(t, dir)
	wrapper := filepath.Join(dir, "launcher")
	if err := os.WriteFile(wrapper, []byte("#!/bin/sh\nexec "+py+" \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	resolveFresh(t, wrapper)
	resolveFresh(t, wrapper)
	if n := runs(); n != 2 {
		t.Fatalf("a launcher script was cached: %d runs, want 2", n)
	}
}

// TestCacheBinaryLauncher: a binary (not a script) that runs another
// interpreter, as version managers' compiled shims do, chooses by rules the
// key does not cover; Python reporting another path than the one run gives
// it away.
func TestCacheBinaryLauncher(t *testing.T) {
	freshCache(t)
	dir := t.TempDir()
	py, runs := fakeInterp(t, dir)
	launcher := filepath.Join(t.TempDir(), "python3")
	copyTestBinary(t, launcher)
	if err := os.WriteFile(launcher+".launches", []byte(py), 0o644); err != nil {
		t.Fatal(err)
	}
	expectRuns(t, launcher, py, runs, 1)
	expectRuns(t, launcher, py, runs, 2)
	// The interpreter run directly is cached.
	expectRuns(t, py, py, runs, 3)
	expectRuns(t, py, py, runs, 3)
}

func TestParseShim(t *testing.T) {
	shim := strings.NewReplacer("@ROOT@", "/home/u/.pyenv", "@PYENV@", "/home/u/.pyenv/libexec/pyenv").Replace(shimTemplates[0])
	got, ok := parseShim(shim)
	if !ok || got != (pyenvShim{root: "/home/u/.pyenv", pyenv: "/home/u/.pyenv/libexec/pyenv"}) {
		t.Fatalf("parseShim = %+v, %v", got, ok)
	}
	for _, bad := range []string{
		strings.Replace(shim, "set -e\n", "set -e\nrm -rf ~\n", 1),
		strings.ReplaceAll(shim, "/home/u/.pyenv\"", "$HOME/.pyenv\""),
		strings.Replace(shim, "\"$program\"", "python3.12", 1),
	} {
		if got, ok := parseShim(bad); ok {
			t.Errorf("parseShim accepted %q as %+v", bad, got)
		}
	}
	// The shim pyenv installed here, if any, is recognised.
	if p, err := exec.LookPath("python3"); err == nil {
		if b, err := readHead(p, 4096); err == nil && strings.HasPrefix(string(b), "#!") && strings.Contains(string(b), "pyenv") {
			if _, ok := parseShim(string(b)); !ok {
				t.Errorf("%s not recognised as a pyenv shim:\n%s", p, b)
			}
		}
	}
}

// fakePyenv writes a pyenv root holding versions a and b (fake
// interpreters) and a shim for python3 that runs pyenv (the given one, or
// a small bash stand-in choosing like pyenv does).
func fakePyenv(t *testing.T, pyenv string) (root, shim string, exe, runs map[string]string) {
	t.Helper()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not found")
	}
	root = filepath.Join(t.TempDir(), "pyenv")
	exe, runs = map[string]string{}, map[string]string{}
	for _, v := range []string{"a", "b"} {
		p, _ := fakeInterp(t, filepath.Join(root, "versions", v))
		exe[v] = p
		b, _ := os.ReadFile(p + ".counter")
		runs[v] = string(b)
	}
	if pyenv == "" {
		pyenv = filepath.Join(root, "libexec", "pyenv")
		script := `#!/usr/bin/env bash
set -e
[ "$1" = exec ] || exit 2
cmd=$2; shift 2
v=$PYENV_VERSION
if [ -z "$v" ]; then
  d=$PWD
  while :; do
    if [ -f "$d/.python-version" ]; then v=$(head -n1 "$d/.python-version"); break; fi
    [ -n "$d" ] || break
    d=${d%/*}
  done
fi
[ -n "$v" ] || v=$(head -n1 "$PYENV_ROOT/version")
if [ -f "$PYENV_ROOT/race" ]; then
  # a version file changing just as pyenv reads it (TestCacheChangeDuringProbe)
  v=$(cat "$PYENV_ROOT/race")
  echo "$v" >.python-version
  rm "$PYENV_ROOT/race"
fi
[ -d "$PYENV_ROOT/versions/$v" ] || v=a # pyenv would fall back to system
exec "$PYENV_ROOT/versions/$v/bin/$cmd" "$@"
`
		if err := os.MkdirAll(filepath.Dir(pyenv), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(pyenv, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	shim = filepath.Join(root, "shims", "python3")
	if err := os.MkdirAll(filepath.Dir(shim), 0o755); err != nil {
		t.Fatal(err)
	}
	body := strings.NewReplacer("@ROOT@", root, "@PYENV@", pyenv).Replace(shimTemplates[0])
	if err := os.WriteFile(shim, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return root, shim, exe, runs
}

// pyenvScenario switches versions every way pyenv offers and checks that
// each switch is followed and each repeat is a cache hit.
func pyenvScenario(t *testing.T, pyenv string) {
	freshCache(t)
	root, shim, exe, counters := fakePyenv(t, pyenv)
	runs := func() int {
		n := 0
		for _, c := range counters {
			b, _ := os.ReadFile(c)
			n += len(b)
		}
		return n
	}
	write := func(path, content string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	work := filepath.Join(t.TempDir(), "work")
	sub := filepath.Join(work, "sub")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(sub)

	t.Setenv("PYENV_VERSION", "a")
	expectRuns(t, shim, exe["a"], runs, 1)
	expectRuns(t, shim, exe["a"], runs, 1)
	t.Setenv("PYENV_VERSION", "b")
	expectRuns(t, shim, exe["b"], runs, 2)
	expectRuns(t, shim, exe["b"], runs, 2)
	t.Setenv("PYENV_VERSION", "a")
	expectRuns(t, shim, exe["a"], runs, 2) // still cached

	t.Setenv("PYENV_VERSION", "")
	write(filepath.Join(work, ".python-version"), "b\n")
	expectRuns(t, shim, exe["b"], runs, 3)
	expectRuns(t, shim, exe["b"], runs, 3)
	write(filepath.Join(work, ".python-version"), "a\n") // same size
	expectRuns(t, shim, exe["a"], runs, 4)
	write(filepath.Join(sub, ".python-version"), "b\n") // nearer the cwd
	expectRuns(t, shim, exe["b"], runs, 5)
	t.Chdir(work) // only work/.python-version ("a") applies
	expectRuns(t, shim, exe["a"], runs, 5)

	os.Remove(filepath.Join(work, ".python-version"))
	write(filepath.Join(root, "version"), "b\n")
	expectRuns(t, shim, exe["b"], runs, 6)
	expectRuns(t, shim, exe["b"], runs, 6)
	write(filepath.Join(root, "version"), "a\n")
	expectRuns(t, shim, exe["a"], runs, 7)

	// The interpreter pyenv picks changing is seen (not part of the key).
	now := time.Now()
	if err := os.Chtimes(exe["a"], now, now); err != nil {
		t.Fatal(err)
	}
	expectRuns(t, shim, exe["a"], runs, 8)
	expectRuns(t, shim, exe["a"], runs, 8)

	// Replacing the shim is a new key.
	body, _ := os.ReadFile(shim)
	os.Remove(shim)
	write(shim, string(body))
	os.Chmod(shim, 0o755)
	expectRuns(t, shim, exe["a"], runs, 9)
}

func TestCachePyenvStandIn(t *testing.T) {
	pyenvScenario(t, "")

	// A version that is not installed falls back (the stand-in: to a);
	// installing it is a new key.
	freshCache(t)
	root, shim, exe, _ := fakePyenv(t, "")
	t.Setenv("PYENV_VERSION", "c")
	if in := resolveFresh(t, shim); in.Executable != exe["a"] {
		t.Fatalf("version c (not installed) resolved to %s, want %s", in.Executable, exe["a"])
	}
	p, runs := fakeInterp(t, filepath.Join(root, "versions", "c"))
	expectRuns(t, shim, p, runs, 1)
	expectRuns(t, shim, p, runs, 1)
}

// TestCacheChangeDuringProbe: what pyenv reads changes between computing
// the key and pyenv reading it; the answer (for the new state) must not be
// stored under the key of the old state. On a file system with coarse
// timestamps the version file's identity stays the same when it is
// rewritten with content of the same size, so only its content (and the
// key being computed again after the probe) tells the states apart.
func TestCacheChangeDuringProbe(t *testing.T) {
	freshCache(t)
	testTuning.timeResolution = int64(24 * time.Hour)
	root, shim, exe, _ := fakePyenv(t, "")
	t.Setenv("PYENV_VERSION", "")
	work := t.TempDir()
	t.Chdir(work)
	write := func(path, content string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(work, ".python-version"), "a\n")
	write(filepath.Join(root, "race"), "b")
	if in := resolveFresh(t, shim); in.Executable != exe["b"] {
		t.Fatalf("stand-in did not switch to b: %s", in.Executable)
	}
	resolveFresh(t, shim) // b, stored under b's key
	write(filepath.Join(work, ".python-version"), "a\n")
	if in := resolveFresh(t, shim); in.Executable != exe["a"] {
		t.Fatalf("with .python-version a resolved %s, want %s", in.Executable, exe["a"])
	}
}

// TestCachePyenvReal runs the scenario through the pyenv installed here
// (its code, plugins and hooks) with a root of fake versions.
func TestCachePyenvReal(t *testing.T) {
	pyenv, err := exec.LookPath("pyenv")
	if err != nil {
		t.Skip("pyenv not installed")
	}
	pyenvScenario(t, pyenv)

	// A version that is not installed falls back to the system python;
	// installing it is a new key.
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		return
	}
	freshCache(t)
	root, shim, _, _ := fakePyenv(t, pyenv)
	t.Setenv("PYENV_VERSION", "c")
	if in := resolveFresh(t, shim); strings.HasPrefix(in.Executable, root) {
		t.Fatalf("version c (not installed) resolved to %s", in.Executable)
	}
	p, runs := fakeInterp(t, filepath.Join(root, "versions", "c"))
	expectRuns(t, shim, p, runs, 1)
	expectRuns(t, shim, p, runs, 1)
}
