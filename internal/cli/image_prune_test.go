package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/internal/image"
	"github.com/skillbox-dev/skillbox/internal/lockfile"
)

// TestImagePruneLockfile: `image prune --lockfile FILE` keeps the images
// that lockfile pins (not ./skills.lock's); a --lockfile that cannot be
// read stops the prune before anything is removed.
func TestImagePruneLockfile(t *testing.T) {
	h := imageHarness(t)
	t.Chdir(t.TempDir())
	a := pullTestImage(t, h, "a")
	b := pullTestImage(t, h, "b")
	c := pullTestImage(t, h, "c")
	lock := func(path string, pin *image.Image) {
		l := lockfile.New(path)
		l.Set("test/boxed", lockfile.Entry{Version: "1", Digest: string(b.Digest), Tier: "project",
			Grants: lockfile.Grants{Timeout: "30s"}, Image: &lockfile.Image{Ref: "oci:image", Digest: string(pin.Digest)}})
		if err := l.Save(); err != nil {
			t.Fatal(err)
		}
	}
	elsewhere := filepath.Join(t.TempDir(), "ci.lock")
	lock(elsewhere, a)
	lock(lockfile.Name, c) // ./skills.lock: not read when --lockfile is given

	o := h.run("image", "prune", "--lockfile", filepath.Join(t.TempDir(), "missing.lock"), "--json")
	if env := o.envelope(t); o.code == 0 || env["error"].(map[string]any)["kind"] != "not_found" {
		t.Errorf("prune with a missing --lockfile: %+v", o)
	}
	for _, img := range []*image.Image{a, b, c} {
		if _, err := os.Stat(img.Rootfs); err != nil {
			t.Fatalf("a prune that failed removed %s", img.Digest.Short())
		}
	}

	o = h.run("image", "prune", "--lockfile", elsewhere, "--json")
	env := o.envelope(t)
	removed, pinned := env["removed"].([]any), env["pinned"].([]any)
	if o.code != 0 || len(removed) != 2 || len(pinned) != 1 || pinned[0].(map[string]any)["digest"] != string(a.Digest) {
		t.Fatalf("prune --lockfile %s: %+v", elsewhere, o)
	}
	o = h.run("image", "prune", "--lockfile", elsewhere)
	if o.code != 0 || !strings.Contains(o.stdout, "kept "+a.Digest.Short()) || !strings.Contains(o.stdout, "pinned by "+elsewhere+" (test/boxed)") {
		t.Errorf("prune --lockfile text: %+v", o)
	}
}
