//go:build unix

package pyodide

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// TestRefusesContainer: a skill asking for its image is never run in
// WebAssembly instead.
func TestRefusesContainer(t *testing.T) {
	_, err := New(Options{}).Open(context.Background(), sandbox.Spec{SkillID: "a/b", BundleDir: t.TempDir(),
		Container: &sandbox.Container{Dockerfile: "Dockerfile"}})
	if !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), "backend pyodide cannot run a/b in its container image (built from Dockerfile)") {
		t.Errorf("Open: %v", err)
	}
}
