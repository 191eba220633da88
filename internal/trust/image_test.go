package trust

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/skillbox-dev/skillbox/errdefs"
)

func TestPinImageRefusesBadPins(t *testing.T) {
	st, err := Open(filepath.Join(t.TempDir(), "trust.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PinImage("a/b", &ImagePin{Ref: "x", Digest: "sha256:" + "ab"}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("pin of an unknown skill: %v", err)
	}
	st.Skills = append(st.Skills, Entry{ID: "a/b"})
	if err := st.PinImage("a/b", &ImagePin{Ref: "x", Digest: "sha256:ab"}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("a short digest: %v", err)
	}
	if err := st.PinImage("a/b", &ImagePin{Digest: "sha256:0000000000000000000000000000000000000000000000000000000000000000"}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("no ref: %v", err)
	}
}
