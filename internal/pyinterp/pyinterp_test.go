package pyinterp

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/errdefs"
)

func TestResolveRealInterpreter(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not on PATH")
	}
	in, err := Resolve(context.Background(), "python3")
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(in.Executable) || !strings.HasPrefix(in.Version, "3.") || len(in.Paths) == 0 {
		t.Fatalf("bad interpreter %+v", in)
	}
	// The executable is a real binary, not a launcher script.
	b, err := os.ReadFile(in.Executable)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(string(b), "#!") {
		t.Fatalf("%s is a script, not an interpreter", in.Executable)
	}
}

// TestCommand: a virtual environment runs as its own python (next to its
// pyvenv.cfg); anything else as the real binary.
func TestCommand(t *testing.T) {
	venv := &probeResult{Interpreter: Interpreter{Executable: "/usr/bin/python3.11", Prefix: "/srv/venv", BasePrefix: "/usr"}, Invoked: "/srv/venv/bin/python"}
	if c := command(venv); c != "/srv/venv/bin/python" {
		t.Errorf("venv command %q", c)
	}
	plain := &probeResult{Interpreter: Interpreter{Executable: "/usr/bin/python3.11", Prefix: "/usr", BasePrefix: "/usr"}, Invoked: "/usr/bin/python3"}
	if c := command(plain); c != "/usr/bin/python3.11" {
		t.Errorf("plain command %q", c)
	}
	if in := (Interpreter{Executable: "/usr/bin/python3.11", Command: "/srv/venv/bin/python"}); !slices.Contains(in.HostPaths(), "/srv/venv/bin/python") {
		t.Errorf("HostPaths lacks the command: %v", in.HostPaths())
	}
}

func TestResolveMissing(t *testing.T) {
	_, err := Resolve(context.Background(), "/nonexistent/python9")
	if !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), "SKILLBOX_PYTHON") {
		t.Fatalf("err = %v, want unavailable naming SKILLBOX_PYTHON", err)
	}
}

func TestResolveNotPython(t *testing.T) {
	_, err := Resolve(context.Background(), "/bin/false")
	if !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("err = %v, want unavailable", err)
	}
}

// TestHostPaths checks that an interpreter's jail paths hold its binary
// and its stdlib, and that a dedicated prefix (pyenv) is mounted whole
// while a shared one (/usr) is not.
func TestHostPaths(t *testing.T) {
	for _, name := range []string{"python3", "/usr/bin/python3"} {
		t.Run(strings.ReplaceAll(name, "/", "_"), func(t *testing.T) {
			if _, err := exec.LookPath(name); err != nil {
				t.Skipf("%s not found", name)
			}
			in, err := Resolve(context.Background(), name)
			if err != nil {
				t.Fatal(err)
			}
			paths := in.HostPaths()
			t.Logf("%s: loader %s libs %v paths %v", in, in.Loader, in.Libs, paths)
			covered := func(p string) bool {
				for _, q := range paths {
					if p == q || strings.HasPrefix(p, q+"/") {
						return true
					}
				}
				return false
			}
			if !covered(in.Executable) || in.Loader == "" || !covered(in.Loader) {
				t.Errorf("executable %s or loader %q not covered", in.Executable, in.Loader)
			}
			for _, p := range in.Paths {
				if !covered(p) {
					t.Errorf("sys.path entry %s not covered", p)
				}
			}
			for _, p := range paths {
				if p == "/usr" || p == "/" {
					t.Errorf("a shared prefix is mounted whole: %s", p)
				}
			}
			if !slices.Contains(systemPrefixes, in.BasePrefix) && !slices.Contains(paths, in.BasePrefix) {
				t.Errorf("dedicated prefix %s not mounted whole", in.BasePrefix)
			}
		})
	}
}
