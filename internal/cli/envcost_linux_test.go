package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/internal/skillenv/envtest"
)

// TestInspectImportCost: inspect shows whether a skill's environment is
// trusted and, once it is built, what it costs each call when it is not:
// measured in the skill's jail as a call's own process pays it (site, then
// the skill's third-party imports), never running the skill's code. The
// requirement's .pth and import each sleep, so the figures must include
// them (lower bounds: what was measured, not how fast).
func TestInspectImportCost(t *testing.T) {
	h, wheels := envHarness(t)
	// Set before the build: pip's configuration files are found under it,
	// so it is part of the environment's key.
	h.env["XDG_CONFIG_HOME"] = filepath.Join(t.TempDir(), "config")
	envtest.WheelOf(t, wheels, "alpha", "1.0", map[string]string{
		"alpha.py":       "import time\ntime.sleep(0.3)\nVERSION = '1.0'\n",
		"alpha_slow.pth": "import time; time.sleep(0.2)\n",
	})
	dir := filepath.Join(h.project, "skills", "test", "costly")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "manifest.yaml"), []byte("name: costly\nversion: \"1\"\ndescription: d\nrequirements: [alpha]\n"), 0o644)
	// Running this file (rather than reading its imports) fails the
	// measurement.
	os.WriteFile(filepath.Join(dir, "skill.py"), []byte(`import json, os
import alpha
from helper import X
from skillware.core.base_skill import BaseSkill
raise SystemExit("the skill's code ran")
`), 0o644)
	os.WriteFile(filepath.Join(dir, "helper.py"), []byte("X = 1\n"), 0o644)

	environment := func() map[string]any {
		t.Helper()
		o := h.run("inspect", "test/costly", "--json")
		env, _ := o.envelope(t)["environment"].(map[string]any)
		if o.code != 0 || env == nil {
			t.Fatalf("inspect: %d %s%s", o.code, o.stdout, o.stderr)
		}
		return env
	}
	if env := environment(); env["built"] != false || env["import_cost"] != nil || env["trusted"] != false {
		t.Errorf("before the build: %v", env)
	}
	if o := h.run("env", "build", "test/costly", "--backend", "linux"); o.code != 0 {
		t.Fatalf("env build: %d %s%s", o.code, o.stdout, o.stderr)
	}
	env := environment()
	cost, _ := env["import_cost"].(map[string]any)
	if env["trusted"] != false || cost == nil {
		t.Fatalf("built, untrusted: %v", env)
	}
	mods, _ := cost["modules"].([]any)
	site, _ := cost["site_ms"].(float64)
	imports, _ := cost["imports_ms"].(float64)
	total, _ := cost["total_ms"].(float64)
	how, _ := cost["how"].(string)
	if !slices.Equal(mods, []any{"alpha"}) || cost["failed"] != nil || site < 190 || imports < 290 || total < site+imports-1 ||
		cost["runs"] != float64(3) || !strings.Contains(how, "in the skill's linux jail") {
		t.Errorf("import_cost = %v", cost)
	}
	t.Logf("import_cost: %v", cost)
	o := h.run("inspect", "test/costly")
	if !strings.Contains(o.stdout, "untrusted: each call's own process processes its site") || !strings.Contains(o.stdout, "per-call import cost: ") ||
		!strings.Contains(o.stdout, "ms: alpha)") {
		t.Errorf("inspect: %d %s%s", o.code, o.stdout, o.stderr)
	}

	pol := filepath.Join(h.env["XDG_CONFIG_HOME"], "skillbox", "policy.yaml")
	os.MkdirAll(filepath.Dir(pol), 0o755)
	os.WriteFile(pol, []byte(fmt.Sprintf("trusted_environments: [%q]\n", env["key"])), 0o644)
	if env := environment(); env["trusted"] != false || env["key_listed"] != true {
		t.Errorf("its key in trusted_environments: %v, want untrusted, key_listed", env)
	}
	if o := h.run("inspect", "test/costly"); !strings.Contains(o.stdout, "trusted_environments lists its key") || !strings.Contains(o.stdout, fmt.Sprint(env["digest"])) {
		t.Errorf("inspect, its key listed: %d %s%s", o.code, o.stdout, o.stderr)
	}
	os.WriteFile(pol, []byte(fmt.Sprintf("trusted_environments: [%q]\n", env["digest"])), 0o644)
	if env := environment(); env["trusted"] != true {
		t.Errorf("listed in trusted_environments: %v", env)
	}
	if o := h.run("inspect", "test/costly"); !strings.Contains(o.stdout, "trusted (trusted_environments lists") || !strings.Contains(o.stdout, "paid once by the zygote") {
		t.Errorf("inspect, trusted: %d %s%s", o.code, o.stdout, o.stderr)
	}
}
