package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/skillbox-dev/skillbox/internal/image/imagetest"
)

// TestImagePull: `image pull` resolves a reference (a loopback registry's
// tag; an OCI layout and a docker archive by paths relative to the working
// folder), unpacks it into the cache with progress on stderr and prints
// its digest; a second pull of an unpacked image says nothing of layers.
func TestImagePull(t *testing.T) {
	h := imageHarness(t)
	t.Chdir(t.TempDir())

	// An OCI layout, relative to the working folder.
	img := imagetest.Tiny(t, "from a layout")
	p, err := layout.Write("layout", empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	o := h.run("image", "pull", "oci:layout")
	if o.code != 0 || o.stdout != d.String()+"\n" {
		t.Fatalf("pull oci:layout: %+v; want the digest %s alone", o, d)
	}
	for _, want := range []string{"image: resolving oci:", "image: pulling oci:", "image: layer 1/1 ", "image: layer 1/1 done: ", "image: unpacked "} {
		if !strings.Contains(o.stderr, want) {
			t.Errorf("pull progress lacks %q:\n%s", want, o.stderr)
		}
	}
	abs, _ := filepath.Abs("layout")
	if l := h.run("image", "list"); !strings.Contains(l.stdout, d.Hex[:12]) || !strings.Contains(l.stdout, "oci:"+abs) {
		t.Errorf("list after pull: %+v", l)
	}
	o = h.run("image", "pull", "oci:layout")
	if o.code != 0 || o.stdout != d.String()+"\n" || strings.Contains(o.stderr, "layer") {
		t.Errorf("second pull of an unpacked image: %+v; want the digest, no layers", o)
	}

	// A docker archive one folder up, relative.
	if err := os.Mkdir("sub", 0o755); err != nil {
		t.Fatal(err)
	}
	dimg := imagetest.Tiny(t, "from a docker archive")
	tag, _ := name.NewTag("example/tiny:1")
	if err := tarball.WriteToFile("tiny.tar", tag, dimg); err != nil {
		t.Fatal(err)
	}
	t.Chdir("sub")
	o = h.run("image", "pull", "docker-archive:../tiny.tar", "--json")
	env := o.envelope(t)
	rec, _ := env["image"].(map[string]any)
	if o.code != 0 || rec == nil || !strings.HasPrefix(env["pinned"].(string), "docker-archive:/") || rec["rootfs"] == nil {
		t.Fatalf("pull docker-archive:../tiny.tar --json: %+v", o)
	}
	if b, err := os.ReadFile(filepath.Join(rec["rootfs"].(string), "tiny")); err != nil || string(b) != "from a docker archive" {
		t.Errorf("pulled docker archive's rootfs: %q, %v", b, err)
	}

	// A loopback registry (plain HTTP: loopback only).
	ref := imagetest.Registry(t) + "/skills/tiny:1"
	digest := imagetest.Push(t, ref, imagetest.Tiny(t, "from a registry"))
	o = h.run("image", "pull", ref, "--json")
	env = o.envelope(t)
	rec, _ = env["image"].(map[string]any)
	if o.code != 0 || rec == nil || rec["digest"] != digest || !strings.HasSuffix(env["pinned"].(string), "/skills/tiny@"+digest) {
		t.Fatalf("pull %s --json: %+v; want %s", ref, o, digest)
	}
	if !strings.Contains(o.stderr, "image: pulling "+ref) || !strings.Contains(o.stderr, ": layers of ") {
		t.Errorf("registry pull progress: %s", o.stderr)
	}

	// Refusals: nothing there, a malformed reference, two references.
	for _, args := range [][]string{{"oci:missing"}, {"Not A Reference"}, {"oci:layout", "oci:layout"}} {
		o := h.run(append([]string{"image", "pull", "--json"}, args...)...)
		if env := o.envelope(t); o.code == 0 || env["ok"] != false {
			t.Errorf("pull %v: %+v", args, o)
		}
	}
}
