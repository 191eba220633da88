package cli

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/skillbox-dev/skillbox/internal/image"
)

// imageHarness is a CLI environment with its own cache folder (no python
// needed: the image commands run nothing).
func imageHarness(t *testing.T) *harness {
	dir := t.TempDir()
	return &harness{t: t, env: map[string]string{
		"HOME":           filepath.Join(dir, "home"),
		"XDG_CACHE_HOME": filepath.Join(dir, "cache"),
		"XDG_STATE_HOME": filepath.Join(dir, "state"),
	}}
}

// pullTestImage unpacks a one-file image into the harness's cache.
func pullTestImage(t *testing.T, h *harness, marker string) *image.Image {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "marker", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(marker))})
	io.WriteString(tw, marker)
	tw.Close()
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	lay := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(lay, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	c := &image.Cache{Dir: filepath.Join(h.env["XDG_CACHE_HOME"], "skillbox", "images")}
	got, err := c.Pull(context.Background(), image.Ref{Transport: image.OCILayout, Name: lay})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestImageListAndPrune(t *testing.T) {
	h := imageHarness(t)
	if o := h.run("image", "list", "--json"); o.code != 0 || len(o.envelope(t)["images"].([]any)) != 0 {
		t.Fatalf("empty list: %+v", o)
	}
	a := pullTestImage(t, h, "a")
	b := pullTestImage(t, h, "b")

	o := h.run("image", "list", "--json")
	imgs := o.envelope(t)["images"].([]any)
	if o.code != 0 || len(imgs) != 2 {
		t.Fatalf("list: %+v", o)
	}
	for _, k := range []string{"ref", "digest", "platform", "size", "rootfs", "config", "unpacked"} {
		if _, ok := imgs[0].(map[string]any)[k]; !ok {
			t.Errorf("list --json: image lacks %q: %v", k, imgs[0])
		}
	}
	o = h.run("image", "list")
	if o.code != 0 || !strings.Contains(o.stdout, a.Digest.Short()) || !strings.Contains(o.stdout, "oci:") {
		t.Fatalf("list text: %+v", o)
	}

	// a is in use by a "jail".
	cache := &image.Cache{Dir: filepath.Join(h.env["XDG_CACHE_HOME"], "skillbox", "images")}
	_, release, err := cache.Use(a.Digest)
	if err != nil {
		t.Fatal(err)
	}
	o = h.run("image", "prune", "--json")
	env := o.envelope(t)
	removed, inUse := env["removed"].([]any), env["in_use"].([]any)
	if o.code != 0 || len(removed) != 1 || len(inUse) != 1 || removed[0].(map[string]any)["digest"] != string(b.Digest) {
		t.Fatalf("prune while a is in use: %+v", o)
	}
	if _, err := os.Stat(a.Rootfs); err != nil {
		t.Fatal("prune removed an image in use")
	}
	release()
	o = h.run("image", "prune")
	if o.code != 0 || !strings.Contains(o.stdout, "removed "+a.Digest.Short()) || !strings.Contains(o.stdout, "freed") {
		t.Fatalf("prune text: %+v", o)
	}
	if o := h.run("image", "list", "--json"); len(o.envelope(t)["images"].([]any)) != 0 {
		t.Fatalf("list after prune: %s", o.stdout)
	}
}

func TestImageUsageErrors(t *testing.T) {
	h := imageHarness(t)
	for _, args := range [][]string{{"image"}, {"image", "pull"}, {"image", "list", "extra"}, {"image", "prune", "--bogus"}} {
		o := h.run(append(args, "--json")...)
		env := o.envelope(t)
		if o.code != 2 || env["ok"] != false || env["error"].(map[string]any)["kind"] != "invalid" {
			t.Errorf("%v: %+v", args, o)
		}
	}
	if o := h.run("image", "-h"); o.code != 0 || !strings.Contains(o.stderr, "prune") {
		t.Errorf("image -h: %+v", o)
	}
}
