//go:build unix

package pyodide

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/userdir"
)

// Pinned versions. Changing one means updating the integrity strings below
// (`npm view <pkg>@<version> dist.integrity`).
const (
	DenoVersion    = "2.9.6"
	PyodideVersion = "314.0.7"
)

// npmPkg is one pinned npm package with its registry integrity (sha512 of
// the tarball). npm ci refuses a tarball that does not match.
type npmPkg struct {
	Name, Version, Integrity string
}

var pyodidePkgs = []npmPkg{
	{"pyodide", PyodideVersion, "sha512-0YvXxEhfEdpLfb/XkM2BFAeMROq0iMUX2bzzH9pOttyMcWkwq+HbE5uyuGD82LN7y2q+SNvi/6V5JEsOlD2R1A=="},
	// pyodide's own dependencies (unused under Deno, but npm ci installs them).
	{"@types/emscripten", "1.41.6", "sha512-uN+9i8bFT5CUcZfyIEYDrSueACEyKGbUs5kC/72DGlZZoinh84sJfVV0i8UOJD1asdzkvLPBRrKs41kZ8MdEXg=="},
	{"ws", "8.23.0", "sha512-wCkmX8QMOrKjgO8HW2WyDbTSGeqkocxgDzS9iR79rEAexty6/2qzilx3Ag8Tqf9ykop3irLKle0MtVn5qjVnoQ=="},
}

// denoPkgs are the platform packages holding the deno executable (what the
// `deno` npm wrapper installs as an optional dependency); installing them
// directly needs no install script.
var denoPkgs = map[string]npmPkg{
	"linux/amd64":  {"@deno/linux-x64-glibc", DenoVersion, "sha512-3md4TKLCuzsLDmfOoC5KN7NAZaxSVkMgm64vg6foD00JBADCpYS2/5QqXfzgnP5ZQz3iLP9vBQJtEgc116OAoQ=="},
	"linux/arm64":  {"@deno/linux-arm64-glibc", DenoVersion, "sha512-poqhoH9B3nYloigEMPT5t8HY+wBeiuea1An5Q7fqgJzP0SYmWsoS/oUnWO/pEiA4ofzIBy1Elt/in58xKtxEoQ=="},
	"darwin/amd64": {"@deno/darwin-x64", DenoVersion, "sha512-tPi3CWPRdjW1MaWlvWjORE7Ass5SADdWdj1BF1Q1PEdzi+5u/mC5YhmZzniMiPr81PpaFeqjXaLAsfb8lFsZ0Q=="},
	"darwin/arm64": {"@deno/darwin-arm64", DenoVersion, "sha512-V8uO1Aolrl/yvdMb5lOtgtigs8YuZBjrOrgviVMiYkQ0swymFfzkae1wZak4Xi24t7vf7d/eiMb/7ryjjVm+tg=="},
}

// installMarker is written last by Install; a folder without it is
// incomplete and ignored.
const installMarker = "skillbox-installed.json"

// DefaultCacheDir is the "pyodide" folder of skillbox's cache folder
// (internal/userdir: $XDG_CACHE_HOME/skillbox or ~/.cache/skillbox), where
// Install puts Deno and Pyodide; "" when there is no cache folder, which
// Locate and Install refuse naming why. Never a shared temporary folder:
// what is installed there is executed.
func DefaultCacheDir() string {
	d, err := userdir.Cache(os.Getenv)
	if err != nil {
		return ""
	}
	return filepath.Join(d, "pyodide")
}

// noCache is the error for an empty cache folder.
func noCache() error {
	_, err := userdir.Cache(os.Getenv)
	if err == nil {
		err = errors.New("no cache folder given")
	}
	return errdefs.Wrap(errdefs.Unavailable, err, "pyodide")
}

// Runtime is an installed Deno + Pyodide pair.
type Runtime struct {
	// Dir is the install folder (<cache>/deno-<v>_pyodide-<v>).
	Dir string
	// Deno is the deno executable.
	Deno string
	// Pyodide is the folder holding pyodide.mjs, pyodide.asm.wasm and
	// python_stdlib.zip.
	Pyodide string
}

func (r Runtime) String() string {
	return fmt.Sprintf("deno %s + pyodide %s in %s", DenoVersion, PyodideVersion, r.Dir)
}

// installDir is where the pinned versions go inside cache.
func installDir(cache string) string {
	return filepath.Join(cache, "deno-"+DenoVersion+"_pyodide-"+PyodideVersion)
}

func platformPkg() (npmPkg, error) {
	p, ok := denoPkgs[runtime.GOOS+"/"+runtime.GOARCH]
	if !ok {
		return npmPkg{}, errdefs.New(errdefs.Unavailable, "backend pyodide: no pinned deno build for %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	return p, nil
}

// Locate returns the runtime installed in cache, or an errdefs.Unavailable
// error naming what is missing and how to install it.
func Locate(cache string) (Runtime, error) {
	if cache == "" {
		return Runtime{}, noCache()
	}
	pkg, err := platformPkg()
	if err != nil {
		return Runtime{}, err
	}
	dir := installDir(cache)
	r := Runtime{
		Dir:     dir,
		Deno:    filepath.Join(dir, "node_modules", filepath.FromSlash(pkg.Name), "deno"),
		Pyodide: filepath.Join(dir, "node_modules", "pyodide"),
	}
	var missing []string
	if _, err := os.Stat(filepath.Join(dir, installMarker)); err != nil {
		missing = append(missing, "install of deno "+DenoVersion+" + pyodide "+PyodideVersion)
	} else {
		if st, err := os.Stat(r.Deno); err != nil || st.Mode()&0o111 == 0 {
			missing = append(missing, "deno "+DenoVersion+" ("+r.Deno+")")
		}
		if _, err := os.Stat(filepath.Join(r.Pyodide, "pyodide.asm.wasm")); err != nil {
			missing = append(missing, "pyodide "+PyodideVersion+" ("+r.Pyodide+")")
		}
	}
	if len(missing) > 0 {
		return r, errdefs.New(errdefs.Unavailable,
			"backend pyodide: missing %s in %s; run `skillbox setup pyodide` (needs npm and the npm registry)",
			strings.Join(missing, ", "), cache)
	}
	return r, nil
}

// Install installs the pinned Deno and Pyodide into cache with `npm ci`
// from a generated lock file, so npm checks every tarball against the
// integrity pinned here. It is a no-op when they are already installed.
// Progress goes to progress (may be nil).
func Install(ctx context.Context, cache string, progress io.Writer) (Runtime, error) {
	if progress == nil {
		progress = io.Discard
	}
	if cache == "" {
		return Runtime{}, noCache()
	}
	if r, err := Locate(cache); err == nil {
		fmt.Fprintf(progress, "skillbox: %s already installed\n", r)
		return r, nil
	}
	pkg, err := platformPkg()
	if err != nil {
		return Runtime{}, err
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return Runtime{}, errdefs.New(errdefs.Unavailable, "backend pyodide: installing deno and pyodide needs npm, which is not on PATH")
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return Runtime{}, errdefs.Wrap(errdefs.Internal, err, "pyodide cache")
	}
	stage, err := os.MkdirTemp(cache, ".install-*")
	if err != nil {
		return Runtime{}, errdefs.Wrap(errdefs.Internal, err, "pyodide cache")
	}
	defer os.RemoveAll(stage)
	pkgs := append([]npmPkg{pkg}, pyodidePkgs...)
	manifest, lock := npmFiles(pkgs[:2], pkgs)
	if err := os.WriteFile(filepath.Join(stage, "package.json"), manifest, 0o644); err != nil {
		return Runtime{}, errdefs.Wrap(errdefs.Internal, err, "write package.json")
	}
	if err := os.WriteFile(filepath.Join(stage, "package-lock.json"), lock, 0o644); err != nil {
		return Runtime{}, errdefs.Wrap(errdefs.Internal, err, "write package-lock.json")
	}
	fmt.Fprintf(progress, "skillbox: installing %s@%s and pyodide@%s with npm (about 110 MB) into %s\n", pkg.Name, DenoVersion, PyodideVersion, cache)
	start := time.Now()
	cmd := exec.CommandContext(ctx, npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund",
		"--loglevel=error", "--prefix", stage)
	cmd.Dir = stage
	var errOut bytes.Buffer
	cmd.Stdout = progress
	cmd.Stderr = io.MultiWriter(&errOut, progress)
	if err := cmd.Run(); err != nil {
		return Runtime{}, errdefs.New(errdefs.Unavailable, "backend pyodide: npm ci failed: %v: %s", err, firstLine(lastLines(errOut.String(), 3)))
	}
	// Check what npm installed before making it visible.
	deno := filepath.Join(stage, "node_modules", filepath.FromSlash(pkg.Name), "deno")
	if err := os.Chmod(deno, 0o755); err != nil {
		return Runtime{}, errdefs.Wrap(errdefs.Unavailable, err, "backend pyodide: deno executable")
	}
	v, err := exec.CommandContext(ctx, deno, "--version").Output()
	if err != nil || !strings.HasPrefix(string(v), "deno "+DenoVersion+" ") {
		return Runtime{}, errdefs.New(errdefs.Unavailable, "backend pyodide: installed deno does not run or is not %s: %v %q", DenoVersion, err, firstLine(string(v)))
	}
	marker, _ := json.MarshalIndent(map[string]any{"deno": DenoVersion, "pyodide": PyodideVersion, "packages": pkgs,
		"installed": time.Now().UTC().Format(time.RFC3339)}, "", "  ")
	if err := os.WriteFile(filepath.Join(stage, installMarker), marker, 0o644); err != nil {
		return Runtime{}, errdefs.Wrap(errdefs.Internal, err, "write install marker")
	}
	dst := installDir(cache)
	os.RemoveAll(dst) // an incomplete earlier install (no marker)
	if err := os.Rename(stage, dst); err != nil {
		if r, lerr := Locate(cache); lerr == nil { // a concurrent install won
			return r, nil
		}
		return Runtime{}, errdefs.Wrap(errdefs.Internal, err, "move install into place")
	}
	fmt.Fprintf(progress, "skillbox: installed in %s\n", time.Since(start).Round(100*time.Millisecond))
	return Locate(cache)
}

// npmFiles returns a package.json depending on direct and a lockfile v3
// pinning every package of all with its integrity.
func npmFiles(direct, all []npmPkg) (manifest, lock []byte) {
	deps := map[string]string{}
	for _, p := range direct {
		deps[p.Name] = p.Version
	}
	manifest, _ = json.MarshalIndent(map[string]any{
		"name": "skillbox-pyodide-runtime", "private": true, "dependencies": deps,
	}, "", "  ")
	pkgs := map[string]any{
		"": map[string]any{"name": "skillbox-pyodide-runtime", "dependencies": deps},
	}
	for _, p := range all {
		e := map[string]any{"version": p.Version, "integrity": p.Integrity}
		if p.Name == "pyodide" {
			e["dependencies"] = map[string]string{"@types/emscripten": "^1.41.4", "ws": "^8.5.0"}
		}
		if p.Name == "ws" {
			e["peerDependencies"] = map[string]string{"bufferutil": "^4.0.1", "utf-8-validate": ">=5.0.2"}
			e["peerDependenciesMeta"] = map[string]any{"bufferutil": map[string]bool{"optional": true}, "utf-8-validate": map[string]bool{"optional": true}}
		}
		pkgs["node_modules/"+p.Name] = e
	}
	lock, _ = json.MarshalIndent(map[string]any{
		"name": "skillbox-pyodide-runtime", "lockfileVersion": 3, "requires": true, "packages": pkgs,
	}, "", "  ")
	return manifest, lock
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// Setup installs the runtime into cache (see Install) and makes the worker
// snapshot, so that the first Open is fast and needs no network.
func Setup(ctx context.Context, cache string, progress io.Writer) (Runtime, error) {
	if progress == nil {
		progress = io.Discard
	}
	rt, err := Install(ctx, cache, progress)
	if err != nil {
		return rt, err
	}
	fmt.Fprintf(progress, "skillbox: making the Pyodide memory snapshot (first time: about 10 s)\n")
	start := time.Now()
	f, err := prepare(ctx, rt)
	if err != nil {
		return rt, err
	}
	fmt.Fprintf(progress, "skillbox: snapshot ready in %s: %s\n", time.Since(start).Round(100*time.Millisecond), f.dir)
	return rt, nil
}
