package cli

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/internal/image/imagetest"
)

// TestImageRunProgress: the backend's pull of a container skill's image on
// first use says what it does on run's stderr; once the image is unpacked
// a run says nothing of it.
func TestImageRunProgress(t *testing.T) {
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		t.Skip("container skills need Linux and root here")
	}
	h := newHarness(t)
	ext := h.external()
	t.Setenv("XDG_CACHE_HOME", h.env["XDG_CACHE_HOME"]) // the linux backend's image cache
	dir := filepath.Join(ext, "test", "boxed")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	imagetest.PythonImage(t, filepath.Join(dir, "image"))
	files := map[string]string{
		"manifest.yaml": "name: boxed\nversion: '1.0.0'\ndescription: Runs in an image.\nexecution: container\ncontainer:\n  image: oci:image\n",
		"skill.py":      "from skillware.core.base_skill import BaseSkill\n\nclass Boxed(BaseSkill):\n    def execute(self, params):\n        with open('/image-marker') as f:\n            return {'marker': f.read().strip()}\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func() outcome {
		return h.run("run", "test/boxed", "--backend", "linux", "--trust-remote-code", "--json")
	}
	o := run()
	if o.code != 0 || !strings.Contains(o.stdout, `"marker":"only in the image"`) {
		t.Fatalf("run: exit %d %s %s", o.code, o.stdout, o.stderr)
	}
	for _, want := range []string{"skillbox: image: pulling oci:", "skillbox: image: layer 1/1 ", "skillbox: image: unpacked "} {
		if !strings.Contains(o.stderr, want) {
			t.Errorf("first run's stderr lacks %q:\n%s", want, o.stderr)
		}
	}
	if o := run(); o.code != 0 || strings.Contains(o.stderr, "image:") {
		t.Errorf("second run: exit %d, stderr %s; want no pull", o.code, o.stderr)
	}
}
