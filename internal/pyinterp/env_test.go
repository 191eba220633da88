package pyinterp

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// venvDir makes the folder of a virtual environment made from exe, as
// venv makes it: bin/python a link to the base, site-packages a folder.
func venvDir(t *testing.T, exe string) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"bin", "lib/python3.11/site-packages"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(exe, filepath.Join(dir, "bin", "python")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// fakeBase is a base interpreter whose binary is a file of the test's.
func fakeBase(t *testing.T) *Interpreter {
	t.Helper()
	exe := filepath.Join(t.TempDir(), "python3.11")
	if err := os.WriteFile(exe, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	exe, _ = filepath.EvalSymlinks(exe)
	return &Interpreter{Executable: exe, Command: exe, Version: "3.11.2",
		Prefix: "/usr", BasePrefix: "/usr", Libs: []string{"/lib/x86_64-linux-gnu/libc.so.6"},
		Paths: []string{"/usr/lib/python3.11", "/usr/lib/python3.11/lib-dynload", "/usr/local/lib/python3.11/dist-packages", "/usr/lib/python3/dist-packages", "/opt/py/lib/python3.11/site-packages"}}
}

// InEnvironment derives a virtual environment's interpreter from its
// base without running it: the base's site directories are left out
// (no system site packages), the environment's site-packages is added,
// and what runs (the command, argv[0] too) is the base's binary, never a
// file of the environment; its bin/python is the Environment.
func TestInEnvironment(t *testing.T) {
	base := fakeBase(t)
	dir := venvDir(t, base.Executable)
	e, err := base.InEnvironment(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/usr/lib/python3.11", "/usr/lib/python3.11/lib-dynload", dir + "/lib/python3.11/site-packages"}
	if !slices.Equal(e.Paths, want) {
		t.Errorf("paths %q, want %q", e.Paths, want)
	}
	if e.Command != base.Executable || e.Environment != dir+"/bin/python" || e.Prefix != dir || e.BasePrefix != "/usr" || e.Executable != base.Executable {
		t.Errorf("env interpreter %+v", e)
	}
	if base.Command != base.Executable || len(base.Paths) != 5 || base.Environment != "" {
		t.Errorf("the base changed: %+v", base)
	}
	if hp := e.HostPaths(); !slices.Contains(hp, dir) || !slices.Contains(hp, e.Environment) {
		t.Errorf("the environment's folder and python are not among the paths a jail shows: %q", hp)
	}
}

// InEnvironment refuses an environment whose bin/python is not a link
// to the base (a package's script in its place) or whose site-packages
// leads out of it: the jail would show what they lead to.
func TestInEnvironmentRefuses(t *testing.T) {
	base := fakeBase(t)
	for name, spoil := range map[string]func(dir string) error{
		"python is a file": func(dir string) error {
			os.Remove(filepath.Join(dir, "bin", "python"))
			return os.WriteFile(filepath.Join(dir, "bin", "python"), []byte("#!/bin/sh\n"), 0o755)
		},
		"python leads elsewhere": func(dir string) error {
			os.Remove(filepath.Join(dir, "bin", "python"))
			return os.Symlink("/bin/sh", filepath.Join(dir, "bin", "python"))
		},
		"site-packages leads out": func(dir string) error {
			site := filepath.Join(dir, "lib", "python3.11", "site-packages")
			os.Remove(site)
			return os.Symlink(t.TempDir(), site)
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := venvDir(t, base.Executable)
			if err := spoil(dir); err != nil {
				t.Fatal(err)
			}
			_, err := base.InEnvironment(dir)
			if err == nil || !strings.Contains(err.Error(), "bin/python") && !strings.Contains(err.Error(), "site-packages") {
				t.Fatalf("error %v, want a refusal naming what is wrong", err)
			}
		})
	}
}
