package skillbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox"
	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/image/imagetest"
	"github.com/skillbox-dev/skillbox/skill"
)

// TestContainerSkill: a skill whose manifest says execution: container,
// with its image as an OCI layout in its bundle, runs through the whole
// Runtime (policy, seal, the linux backend) in the image's root, unpacked
// under the Runtime's cache folder (WithCacheDir), not the user's; the
// process backend refuses it rather than running it on the host.
func TestContainerSkill(t *testing.T) {
	requireBackend(t, "linux")
	if os.Geteuid() != 0 {
		t.Skip("needs root for the linux jail")
	}
	userCache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", userCache)
	root := t.TempDir()
	dir := filepath.Join(root, "test", "boxed")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	manifest := "name: boxed\nversion: \"1\"\ndescription: runs in its image\nexecution: container\ncontainer:\n  image: oci:image\n"
	code := "import os, sys\nfrom skillware.core.base_skill import BaseSkill\n\nclass Boxed(BaseSkill):\n" +
		"    def execute(self, params):\n        return {'marker': open('/image-marker').read(), 'python': sys.executable, 'host': os.path.exists('/work')}\n"
	os.WriteFile(filepath.Join(dir, "manifest.yaml"), []byte(manifest), 0o644)
	os.WriteFile(filepath.Join(dir, "skill.py"), []byte(code), 0o644)
	imagetest.PythonImage(t, filepath.Join(dir, "image"))
	cacheDir := t.TempDir()
	rt, err := skillbox.New(skillbox.WithRoots(skill.Root{Path: root, Tier: skill.TierProject}), skillbox.WithCacheDir(cacheDir))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	res, err := rt.Call(context.Background(), "test/boxed", json.RawMessage(`{}`), skillbox.CallOptions{Backend: "linux"})
	if err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(filepath.Join(cacheDir, "images")); len(ents) == 0 {
		t.Errorf("nothing unpacked in the Runtime's cache folder's images")
	}
	if _, err := os.Stat(filepath.Join(userCache, "skillbox", "images")); err == nil {
		t.Errorf("the image went to the user's cache folder, not WithCacheDir's")
	}
	var v map[string]any
	if err := json.Unmarshal(res.Value, &v); err != nil {
		t.Fatal(err)
	}
	if v["marker"] != imagetest.Marker || v["python"] != "/usr/bin/python3" || v["host"] != false {
		t.Errorf("the skill did not run in its image: %v", v)
	}
	_, err = rt.Call(context.Background(), "test/boxed", json.RawMessage(`{}`), skillbox.CallOptions{Backend: "process"})
	if !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), "only the linux and gvisor backends run execution: container skills") {
		t.Errorf("process backend: %v, want unavailable", err)
	}
}
