package process

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// TestRefusesContainer: a skill asking for its image is never run with
// the host's interpreter instead.
func TestRefusesContainer(t *testing.T) {
	_, err := Driver{}.Open(context.Background(), sandbox.Spec{SkillID: "a/b", BundleDir: t.TempDir(),
		Container: &sandbox.Container{Image: "oci:image"}})
	if !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), "backend process cannot run a/b in its container image (oci:image)") {
		t.Errorf("Open: %v", err)
	}
}
