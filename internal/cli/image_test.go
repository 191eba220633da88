package cli

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
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

func TestImageBuild(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("image builds run on Linux only")
	}
	if _, err := image.DetectBuilder(context.Background()); err != nil {
		t.Skipf("no image builder: %v", err)
	}
	if os.Geteuid() != 0 {
		t.Skip("image builds need root (rootless builds are not supported yet)")
	}
	h := imageHarness(t)
	dir := t.TempDir()
	// No RUN step: the builder copies, nothing runs (the image package's
	// tests run hostile RUN steps).
	os.WriteFile(filepath.Join(dir, "hello"), []byte("hello\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY hello /hello\n"), 0o644)
	o := h.run("image", "build", "--file", filepath.Join(dir, "Dockerfile"), "--json")
	env := o.envelope(t)
	img, _ := env["image"].(map[string]any)
	if o.code != 0 || img == nil || env["builder"].(map[string]any)["name"] == "" {
		t.Fatalf("build --json: %+v", o)
	}
	if !strings.Contains(o.stderr, "build: STEP 2/2: COPY hello /hello") {
		t.Errorf("stderr lacks the builder's progress: %s", o.stderr)
	}
	b, err := os.ReadFile(filepath.Join(img["rootfs"].(string), "hello"))
	if err != nil || string(b) != "hello\n" {
		t.Errorf("built rootfs: %q, %v", b, err)
	}
	o = h.run("image", "list")
	if o.code != 0 || !strings.Contains(o.stdout, img["digest"].(string)[len("sha256:"):][:12]) {
		t.Errorf("list after build: %+v", o)
	}
	// Text output: the digest alone; --context names the folder.
	o = h.run("image", "build", "--file", filepath.Join(dir, "Dockerfile"), "--context", dir)
	if o.code != 0 || !strings.HasPrefix(o.stdout, "sha256:") || strings.Count(o.stdout, "\n") != 1 {
		t.Errorf("build text: %+v", o)
	}
}

func TestImageBuildErrors(t *testing.T) {
	h := imageHarness(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM registry.example/x\n"), 0o644)
	for _, tc := range []struct {
		args []string
		code int
		kind string
	}{
		{[]string{"image", "build"}, 2, "invalid"},
		{[]string{"image", "build", "extra", "--file", "x"}, 2, "invalid"},
		{[]string{"image", "build", "--file", filepath.Join(dir, "Dockerfile"), "--timeout", "0s"}, 2, "invalid"},
	} {
		o := h.run(append(tc.args, "--json")...)
		env := o.envelope(t)
		if o.code != tc.code || env["error"].(map[string]any)["kind"] != tc.kind {
			t.Errorf("%v: %+v", tc.args, o)
		}
	}
	if _, err := image.DetectBuilder(context.Background()); err == nil {
		// A remote FROM is refused before the builder runs.
		o := h.run("image", "build", "--file", filepath.Join(dir, "Dockerfile"), "--json")
		if env := o.envelope(t); env["error"].(map[string]any)["kind"] != "denied" || !strings.Contains(o.stdout, "loopback") {
			t.Errorf("remote FROM: %+v", o)
		}
	}
}

func TestDoctorListsImageBuilders(t *testing.T) {
	h := imageHarness(t)
	o := h.run("doctor", "--json")
	env := o.envelope(t)
	bs, ok := env["builders"].([]any)
	if !ok {
		t.Fatalf("doctor --json: no builders: %s", o.stdout)
	}
	want := ""
	if b, err := image.DetectBuilder(context.Background()); err == nil {
		want = b.Name
	} else if env["builder_error"] == nil {
		t.Errorf("no builder and no builder_error: %s", o.stdout)
	}
	if env["builder"] != want {
		t.Errorf("builder = %v, want %q (%v)", env["builder"], want, bs)
	}
	o = h.run("doctor")
	if !strings.Contains(o.stdout, "image builders") || !strings.Contains(o.stdout, "builds with →") {
		t.Errorf("doctor text lacks the builders: %s", o.stdout)
	}
}
