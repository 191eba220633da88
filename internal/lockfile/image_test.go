package lockfile

import (
	"errors"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/errdefs"
)

func TestImagePin(t *testing.T) {
	l := sample(t)
	e := l.Skills["cat/name"]
	e.Image = &Image{Ref: "registry.example/skills/x:1", Digest: dg2}
	l.Set("cat/name", e)
	if err := l.Save(); err != nil {
		t.Fatal(err)
	}
	l, err := Load(l.Path())
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Skills["cat/name"].Image; got == nil || got.Digest != dg2 {
		t.Fatalf("image pin did not round-trip: %+v", got)
	}
	if d, err := l.CheckImage("cat/name", ""); err != nil || d != dg2 {
		t.Errorf("CheckImage without a trusted pin = %q, %v", d, err)
	}
	if d, err := l.CheckImage("cat/name", dg2); err != nil || d != dg2 {
		t.Errorf("CheckImage with the same trusted pin = %q, %v", d, err)
	}
	var denied *errdefs.DeniedError
	if _, err := l.CheckImage("cat/name", dg); !errors.As(err, &denied) || denied.Permission != "lockfile image" || !strings.Contains(err.Error(), "trusted at "+dg+", locked at "+dg2) {
		t.Errorf("CheckImage with another trusted pin: %v", err)
	}
	if d, err := l.CheckImage("other/skill", dg); err != nil || d != "" {
		t.Errorf("CheckImage of an unlocked skill = %q, %v", d, err)
	}
	bad := `{"version": 1, "skills": {"a/b": {"version": "1", "digest": "` + dg + `", "tier": "project", "grants": {"env": [], "network": [], "read": [], "timeout": "30s", "memory": 1}, "image": {"ref": "x", "digest": "sha256:short"}}}}`
	if _, err := Parse([]byte(bad)); err == nil || !strings.Contains(err.Error(), "a/b: image needs a ref and a digest") {
		t.Errorf("bad image digest: %v", err)
	}
}
