package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestInspectContainer(t *testing.T) {
	h := newHarness(t)
	dir := filepath.Join(h.project, "skills", "test", "boxed")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	manifest := "name: boxed\nversion: '1.0.0'\ndescription: Runs in an image.\nexecution: container\ncontainer:\n  image: oci:image\n  python: /usr/local/bin/python3\n"
	skillPy := "from skillware.core.base_skill import BaseSkill\n\nclass Boxed(BaseSkill):\n    def execute(self, params):\n        return {}\n"
	for name, text := range map[string]string{"manifest.yaml": manifest, "skill.py": skillPy} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	o := h.run("inspect", "test/boxed", "--json")
	if o.code != 0 {
		t.Fatalf("inspect: exit %d %s", o.code, o.stderr)
	}
	req := o.envelope(t)["requests"].(map[string]any)
	c, _ := req["container"].(map[string]any)
	if req["execution"] != "container" || c["image"] != "oci:image" || c["python"] != "/usr/local/bin/python3" {
		t.Errorf("inspect --json requests: %v", req)
	}
	o = h.run("inspect", "test/boxed")
	if !strings.Contains(o.stdout, "execution: container, image oci:image (its root file system is the jail's root; python: /usr/local/bin/python3)") {
		t.Errorf("inspect text:\n%s", o.stdout)
	}
	o = h.run("inspect", "test/echo", "--json")
	if req := o.envelope(t)["requests"].(map[string]any); req["execution"] != "in_process" || req["container"] != nil {
		t.Errorf("inspect of an in-process skill: %v", req)
	}
}
