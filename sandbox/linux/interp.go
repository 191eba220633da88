package linux

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Interp is a resolved Python interpreter and the host paths it needs.
type Interp struct {
	// Path is the real (symlink-free) path of the interpreter binary.
	Path string `json:"path"`
	// Version is sys.version_info as "3.11.2".
	Version string `json:"version"`
	// Dirs are the existing sys.path directories (stdlib, lib-dynload,
	// site/dist-packages) as the interpreter names them.
	Dirs []string `json:"dirs"`
	// Loader is the ELF interpreter (ld.so) path from PT_INTERP.
	Loader string `json:"loader"`
	// Libs are the resolved paths of the binary's DT_NEEDED libraries.
	Libs []string `json:"libs"`
}

// queryScript prints what the jail must contain. -I keeps user site and
// PYTHON* variables out, as in the jail.
const queryScript = `import json,sys,os,platform
print(json.dumps({"exe":sys.executable,"version":platform.python_version(),
"path":[p for p in sys.path if p and os.path.isdir(p)]}))`

// defaultPythons are tried in order when neither the Spec nor the Options
// name an interpreter. Debian's python3 first: pyenv shims are shell
// scripts that need the whole pyenv tree and $HOME.
var defaultPythons = []string{"/usr/bin/python3", "python3"}

// ResolveInterp finds the real interpreter behind python (a path or a name
// on PATH; "" tries the defaults) by asking it for sys.executable, so a
// shim or wrapper script resolves to the binary it runs, and checks that
// the result is an ELF executable.
func ResolveInterp(ctx context.Context, python string) (*Interp, error) {
	cands := defaultPythons
	if python != "" {
		cands = []string{python}
	}
	var errs []string
	for _, c := range cands {
		in, err := resolveOne(ctx, c)
		if err == nil {
			return in, nil
		}
		errs = append(errs, err.Error())
	}
	return nil, fmt.Errorf("no usable python: %s", strings.Join(errs, "; "))
}

func resolveOne(ctx context.Context, python string) (*Interp, error) {
	p, err := exec.LookPath(python)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, p, "-I", "-c", queryScript)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	var q struct {
		Exe     string   `json:"exe"`
		Version string   `json:"version"`
		Path    []string `json:"path"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(out), &q); err != nil {
		return nil, fmt.Errorf("%s: bad sysconfig answer: %w", p, err)
	}
	real, err := filepath.EvalSymlinks(q.Exe)
	if err != nil {
		return nil, fmt.Errorf("%s: sys.executable %q: %w", p, q.Exe, err)
	}
	f, err := elf.Open(real)
	if err != nil {
		return nil, fmt.Errorf("%s is not an ELF binary (a shim or script?): %w", real, err)
	}
	defer f.Close()
	in := &Interp{Path: real, Version: q.Version, Dirs: q.Path}
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			b := make([]byte, prog.Filesz)
			if _, err := prog.ReadAt(b, 0); err == nil {
				in.Loader = string(bytes.TrimRight(b, "\x00"))
			}
		}
	}
	needed, _ := f.ImportedLibraries()
	runpath, _ := f.DynString(elf.DT_RUNPATH)
	if len(runpath) == 0 {
		runpath, _ = f.DynString(elf.DT_RPATH)
	}
	var search []string
	for _, rp := range runpath {
		for _, d := range strings.Split(rp, ":") {
			search = append(search, strings.ReplaceAll(d, "$ORIGIN", filepath.Dir(real)))
		}
	}
	search = append(search, libDirs()...)
	for _, lib := range needed {
		for _, d := range search {
			cand := filepath.Join(d, lib)
			if _, err := os.Stat(cand); err == nil {
				in.Libs = append(in.Libs, cand)
				break
			}
		}
	}
	return in, nil
}

// libDirs are the loader's default search directories on glibc systems
// (multiarch first, as Debian's loader searches them).
func libDirs() []string {
	var out []string
	for _, triple := range []string{"x86_64-linux-gnu", "aarch64-linux-gnu"} {
		out = append(out, "/lib/"+triple, "/usr/lib/"+triple)
	}
	return append(out, "/lib64", "/usr/lib64", "/lib", "/usr/lib")
}

// needs lists the host paths the jail binds read-only for in: the binary,
// the loader, the directories holding its libraries (extension modules in
// lib-dynload load more libraries from the same directories), the sys.path
// directories, and the loader cache. Nested duplicates are removed later
// by the plan.
func (in *Interp) needs() []string {
	paths := []string{in.Path}
	if in.Loader != "" {
		paths = append(paths, in.Loader)
	}
	for _, l := range in.Libs {
		if real, err := filepath.EvalSymlinks(l); err == nil {
			paths = append(paths, filepath.Dir(real))
		}
	}
	paths = append(paths, in.Dirs...)
	// Not secret, and spares the loader a directory walk when present.
	if _, err := os.Stat("/etc/ld.so.cache"); err == nil {
		paths = append(paths, "/etc/ld.so.cache")
	}
	slices.Sort(paths)
	return slices.Compact(paths)
}
