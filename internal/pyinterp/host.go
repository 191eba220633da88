package pyinterp

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// linkage reads the dynamic loader and the needed libraries of the ELF
// binary exe, searching its RUNPATH (or RPATH) and then the loader's
// default directories. A binary that is not ELF has neither.
func linkage(exe string) (loader string, libs []string) {
	f, err := elf.Open(exe)
	if err != nil {
		return "", nil
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			b := make([]byte, prog.Filesz)
			if _, err := prog.ReadAt(b, 0); err == nil {
				loader = string(bytes.TrimRight(b, "\x00"))
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
			search = append(search, strings.ReplaceAll(d, "$ORIGIN", filepath.Dir(exe)))
		}
	}
	search = append(search, defaultLibDirs()...)
	for _, lib := range needed {
		for _, d := range search {
			cand := filepath.Join(d, lib)
			if _, err := os.Stat(cand); err == nil {
				libs = append(libs, cand)
				break
			}
		}
	}
	return loader, libs
}

// defaultLibDirs are the loader's default search directories on glibc
// systems (multiarch first, as Debian's loader searches them).
func defaultLibDirs() []string {
	var out []string
	for _, triple := range []string{"x86_64-linux-gnu", "aarch64-linux-gnu"} {
		out = append(out, "/lib/"+triple, "/usr/lib/"+triple)
	}
	return append(out, "/lib64", "/usr/lib64", "/lib", "/usr/lib")
}

// systemPrefixes are prefixes shared with the rest of the system: a jail
// mounts only the interpreter's own parts of them, never the whole tree.
var systemPrefixes = []string{"/", "/usr", "/usr/local", "/opt"}

// HostPaths lists the host paths a jail must make readable, at the same
// paths, for the interpreter to run: the installation prefix when it is the
// interpreter's own (pyenv, a relocatable build; a shared prefix such as
// /usr contributes only what follows), the binary, the loader, the
// directories of its shared libraries (extension modules load more
// libraries from there), the sys.path directories, and the loader cache.
// Nested entries are left in; callers merge them.
func (in *Interpreter) HostPaths() []string {
	paths := []string{in.Executable}
	if in.Command != "" {
		paths = append(paths, in.Command) // a venv's python and pyvenv.cfg
	}
	if in.Environment != "" {
		// Its links to the base, checked (InEnvironment): the skill's own
		// subprocesses start it.
		paths = append(paths, in.Environment)
	}
	for _, p := range []string{in.BasePrefix, in.Prefix} {
		if p == "" || slices.Contains(systemPrefixes, filepath.Clean(p)) {
			continue
		}
		if real, err := filepath.EvalSymlinks(p); err == nil {
			paths = append(paths, real)
		}
	}
	if in.Loader != "" {
		paths = append(paths, in.Loader)
	}
	for _, l := range in.Libs {
		if real, err := filepath.EvalSymlinks(l); err == nil {
			paths = append(paths, filepath.Dir(real))
		}
	}
	paths = append(paths, in.Paths...)
	if _, err := os.Stat("/etc/ld.so.cache"); err == nil {
		// Not secret, and spares the loader a directory walk.
		paths = append(paths, "/etc/ld.so.cache")
	}
	slices.Sort(paths)
	return slices.Compact(paths)
}

// ELFDeps lists what the dynamically linked ELF binary exe needs to run in
// an otherwise empty root: its loader (PT_INTERP) and the libraries of
// DT_NEEDED, transitively, as real paths (symlinks resolved). A static
// binary, or one that is not ELF, needs nothing.
func ELFDeps(exe string) []string {
	var out []string
	seen := map[string]bool{}
	queue := []string{exe}
	for len(queue) > 0 {
		bin := queue[0]
		queue = queue[1:]
		loader, libs := linkage(bin)
		if loader != "" {
			libs = append(libs, loader)
		}
		for _, l := range libs {
			real, err := filepath.EvalSymlinks(l)
			if err != nil || seen[real] {
				continue
			}
			seen[real] = true
			out = append(out, real)
			if l != loader {
				queue = append(queue, real)
			}
		}
		if loader != "" && !seen["loader:"+loader] {
			// The loader is found by the path compiled into the binary
			// (/lib64/ld-linux-x86-64.so.2), symlinks included.
			seen["loader:"+loader] = true
			out = append(out, loader)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// InEnvironment returns the interpreter of the virtual environment at dir
// made from in (created by the standard library's venv without system
// site packages, its bin/python a link to in's binary), without running
// it: an environment's packages are untrusted, and a start of its python
// on the host (site, .pth files) would run their code there. Its sys.path
// is in's without in's site directories, plus the environment's
// site-packages.
//
// What runs is in's binary, and argv[0] is too (Command): nothing of the
// environment is read at the interpreter's start, where CPython reads a
// pyvenv.cfg ("home" decides where the standard library comes from) and a
// NAME._pth (which replaces sys.path) beside argv[0]. Environment is the
// environment's bin/python, which the harness makes sys.executable just
// before it processes site, in the process that runs the skill's code.
//
// It refuses an environment whose bin/python does not resolve to in's
// binary (the skill's own subprocesses start it, and a jail shows what it
// leads to) or whose site-packages leads out of dir (a jail shows it).
func (in *Interpreter) InEnvironment(dir string) (*Interpreter, error) {
	e := *in
	e.Command = in.Executable
	e.Environment = filepath.Join(dir, "bin", "python")
	e.Prefix = dir
	e.Paths = nil
	for _, p := range in.Paths {
		if b := filepath.Base(p); b != "site-packages" && b != "dist-packages" {
			e.Paths = append(e.Paths, p)
		}
	}
	mm := in.Version
	if parts := strings.SplitN(mm, ".", 3); len(parts) >= 2 {
		mm = parts[0] + "." + parts[1]
	}
	site := filepath.Join(dir, "lib", "python"+mm, "site-packages")
	e.Paths = append(e.Paths, site)
	e.Libs = slices.Clone(in.Libs)
	if err := checkEnvironment(dir, e.Environment, site, in.Executable); err != nil {
		return nil, err
	}
	return &e, nil
}

// checkEnvironment checks the environment at dir for InEnvironment.
func checkEnvironment(dir, python, site, executable string) error {
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return err
	}
	fi, err := os.Lstat(python)
	if err != nil {
		return err
	}
	real, err := filepath.EvalSymlinks(python)
	if fi.Mode()&os.ModeSymlink == 0 || err != nil || real != executable {
		return fmt.Errorf("its bin/python is not a link to %s, the interpreter it was made from (a package replaced it?): remove the environment (skillbox env prune) to build it again", executable)
	}
	realSite, err := filepath.EvalSymlinks(site)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(realSite, realDir+string(filepath.Separator)) {
		return fmt.Errorf("its site-packages leads out of it, to %s", realSite)
	}
	return nil
}
