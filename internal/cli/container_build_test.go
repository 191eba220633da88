package cli

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/internal/image"
	"github.com/skillbox-dev/skillbox/internal/image/imagetest"
)

// A skill whose manifest names a container.dockerfile runs in the image
// `skillbox image build SKILL` built for exactly its bundle digest: not
// before the build, and not after an edit of the bundle until it is built
// again. A call never builds unless the operator allows it
// (TestRunBuildImages).
func TestImageBuildSkill(t *testing.T) {
	requireBuilder(t)
	h := newHarness(t)
	dir := builtSkill(t, h)
	run := func() outcome {
		return h.run("run", "test/built", "--backend", "linux", "--trust-remote-code", "--json")
	}
	if o := run(); o.code != 5 || !strings.Contains(o.stdout, "skillbox image build test/built") {
		t.Fatalf("run before the build: exit %d %s %s; want unavailable naming the build command", o.code, o.stdout, o.stderr)
	}
	if o := h.run("image", "build", "test/built", "--file", "x"); o.code != 2 {
		t.Errorf("image build SKILL --file: exit %d %s", o.code, o.stderr)
	}
	o := h.run("image", "build", "test/built")
	if o.code != 0 || !strings.HasPrefix(o.stdout, "sha256:") {
		t.Fatalf("image build test/built: exit %d %s %s", o.code, o.stdout, o.stderr)
	}
	if o := run(); o.code != 0 || !strings.Contains(o.stdout, `"marker":"from the dockerfile"`) {
		t.Fatalf("run after the build: exit %d %s %s", o.code, o.stdout, o.stderr)
	}
	// An edit makes another bundle digest: its image is not built yet.
	if err := os.WriteFile(filepath.Join(dir, "marker.txt"), []byte("edited\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if o := run(); o.code != 5 {
		t.Errorf("run after an edit: exit %d %s; want unavailable until built again", o.code, o.stdout)
	}
	if o := h.run("image", "build", "test/built"); o.code != 0 {
		t.Fatalf("build again: exit %d %s", o.code, o.stderr)
	}
	if o := run(); o.code != 0 || !strings.Contains(o.stdout, `"marker":"edited"`) {
		t.Errorf("run after the second build: exit %d %s %s", o.code, o.stdout, o.stderr)
	}
}

// requireBuilder skips unless this host builds images and runs container
// skills.
func requireBuilder(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		t.Skip("image builds and container skills need Linux and root here")
	}
	if _, err := image.DetectBuilder(context.Background()); err != nil {
		t.Skipf("no image builder: %v", err)
	}
}

// builtSkill writes test/built, a skill whose manifest names a
// container.dockerfile (FROM imagetest's image in its bundle, plus a
// marker file), into h's external root and returns its folder. The
// linux backend's image cache is h's.
func builtSkill(t *testing.T, h *harness) string {
	t.Helper()
	ext := h.external()
	t.Setenv("XDG_CACHE_HOME", h.env["XDG_CACHE_HOME"]) // the linux backend's image cache
	dir := filepath.Join(ext, "test", "built")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	imagetest.PythonImage(t, filepath.Join(dir, "image"))
	files := map[string]string{
		"manifest.yaml": "name: built\nversion: '1.0.0'\ndescription: Runs in the image its Dockerfile builds.\nexecution: container\ncontainer:\n  dockerfile: Dockerfile\n",
		"skill.py":      "from skillware.core.base_skill import BaseSkill\n\nclass Built(BaseSkill):\n    def execute(self, params):\n        with open('/built-marker') as f:\n            return {'marker': f.read().strip()}\n",
		"Dockerfile":    "FROM oci:image\nCOPY marker.txt /built-marker\n",
		"marker.txt":    "from the dockerfile\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// With --build-images (or build_images: true in the policy file) a call
// of a Dockerfile skill whose image is not built builds it, as `image
// build SKILL` would, with progress on stderr, then runs; a later call
// finds it built. Without either, the call stays unavailable and names
// both ways.
func TestRunBuildImages(t *testing.T) {
	requireBuilder(t)
	h := newHarness(t)
	dir := builtSkill(t, h)
	run := func(flags ...string) outcome {
		return h.run(append([]string{"run", "test/built", "--backend", "linux", "--trust-remote-code", "--json"}, flags...)...)
	}
	if o := run(); o.code != 5 || !strings.Contains(o.stdout, "skillbox image build test/built") || !strings.Contains(o.stdout, "--build-images") {
		t.Fatalf("run without --build-images: exit %d %s %s; want unavailable naming the command and the flag", o.code, o.stdout, o.stderr)
	}
	o := run("--build-images")
	if o.code != 0 || !strings.Contains(o.stdout, `"marker":"from the dockerfile"`) {
		t.Fatalf("run --build-images: exit %d %s %s", o.code, o.stdout, o.stderr)
	}
	if !strings.Contains(o.stderr, "skillbox: image: building Dockerfile with buildah") || !strings.Contains(o.stderr, "build: ") {
		t.Errorf("run --build-images: no build progress on stderr:\n%s", o.stderr)
	}
	// Built now, for this bundle digest: a call without the flag runs it
	// and builds nothing.
	if o := run(); o.code != 0 || !strings.Contains(o.stdout, `"marker":"from the dockerfile"`) || strings.Contains(o.stderr, "building") {
		t.Fatalf("run after the build on first use: exit %d %s %s", o.code, o.stdout, o.stderr)
	}
	// An edit is another bundle digest; the policy file's build_images
	// builds it as the flag does.
	if err := os.WriteFile(filepath.Join(dir, "marker.txt"), []byte("edited\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pol := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(pol, []byte("build_images: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if o := run("--policy", pol); o.code != 0 || !strings.Contains(o.stdout, `"marker":"edited"`) || !strings.Contains(o.stderr, "building Dockerfile") {
		t.Errorf("run with build_images: true: exit %d %s %s", o.code, o.stdout, o.stderr)
	}
}
