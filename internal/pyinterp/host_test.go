package pyinterp

import (
	"debug/elf"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestDynamicMatchesDebugELF checks dynamic against debug/elf's DynString
// on the ELF binaries at hand: the Python interpreters, a C program, and
// this test binary (a static Go one has no dynamic section).
func TestDynamicMatchesDebugELF(t *testing.T) {
	exe, _ := os.Executable()
	bins := []string{"/usr/bin/python3", "/usr/local/bin/python3", "/bin/ls", "/bin/sh", exe}
	// pyenv's builds carry a RUNPATH.
	pyenv, _ := filepath.Glob(filepath.Join(os.Getenv("HOME"), ".pyenv/versions/*/bin/python3.*[0-9]"))
	n := 0
	for _, p := range append(bins, pyenv...) {
		f, err := elf.Open(p)
		if err != nil {
			continue
		}
		n++
		needed, runpath, rpath := dynamic(f)
		for _, c := range []struct {
			tag elf.DynTag
			got []string
		}{{elf.DT_NEEDED, needed}, {elf.DT_RUNPATH, runpath}, {elf.DT_RPATH, rpath}} {
			want, _ := f.DynString(c.tag)
			if !slices.Equal(c.got, want) {
				t.Errorf("%s: %v = %q, debug/elf says %q", p, c.tag, c.got, want)
			}
		}
		f.Close()
	}
	if n == 0 {
		t.Skip("no ELF binary to read")
	}
}
