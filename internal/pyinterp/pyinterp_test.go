package pyinterp

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
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
