package pyinterp

import (
	"slices"
	"testing"
)

// InEnvironment derives a virtual environment's interpreter from its
// base without running it: the base's site directories are left out
// (no system site packages), the environment's site-packages is added,
// and the command is the environment's python.
func TestInEnvironment(t *testing.T) {
	base := &Interpreter{Executable: "/usr/bin/python3.11", Command: "/usr/bin/python3.11", Version: "3.11.2",
		Prefix: "/usr", BasePrefix: "/usr", Libs: []string{"/lib/x86_64-linux-gnu/libc.so.6"},
		Paths: []string{"/usr/lib/python3.11", "/usr/lib/python3.11/lib-dynload", "/usr/local/lib/python3.11/dist-packages", "/usr/lib/python3/dist-packages", "/opt/py/lib/python3.11/site-packages"}}
	e := base.InEnvironment("/cache/envs/abc")
	want := []string{"/usr/lib/python3.11", "/usr/lib/python3.11/lib-dynload", "/cache/envs/abc/lib/python3.11/site-packages"}
	if !slices.Equal(e.Paths, want) {
		t.Errorf("paths %q, want %q", e.Paths, want)
	}
	if e.Command != "/cache/envs/abc/bin/python" || e.Prefix != "/cache/envs/abc" || e.BasePrefix != "/usr" || e.Executable != base.Executable {
		t.Errorf("env interpreter %+v", e)
	}
	if base.Command != "/usr/bin/python3.11" || len(base.Paths) != 5 {
		t.Errorf("the base changed: %+v", base)
	}
	dir := t.TempDir()
	if hp := base.InEnvironment(dir).HostPaths(); !slices.Contains(hp, dir) {
		t.Errorf("the environment's folder is not among the paths a jail shows: %q", hp)
	}
}
