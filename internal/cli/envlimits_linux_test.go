package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/internal/skillenv/envtest"
)

// TestEnvBuildLimitsPolicy: the policy file's env_build reaches the build:
// with a size limit smaller than the environment, the build fails,
// unavailable, naming the limit; doctor --json shows the effective limits
// (the policy's, the defaults for the rest); without the setting the same
// environment builds.
func TestEnvBuildLimitsPolicy(t *testing.T) {
	h, wheels := envHarness(t)
	envtest.WheelOf(t, wheels, "bulky", "1.0", map[string]string{
		"bulky.py":  "VERSION = '1.0'\n",
		"bulky.dat": strings.Repeat("skillbox environment ballast\n", (4<<20)/29),
	})
	reqSkill(t, filepath.Join(h.project, "skills"), "bulky", `["bulky"]`, "bulky")
	h.env["XDG_CONFIG_HOME"] = filepath.Join(t.TempDir(), "config")
	pol := filepath.Join(h.env["XDG_CONFIG_HOME"], "skillbox", "policy.yaml")
	os.MkdirAll(filepath.Dir(pol), 0o755)
	os.WriteFile(pol, []byte("env_build:\n  size: 2MiB\n  timeout: 5m\n"), 0o644)

	o := h.run("doctor", "--json")
	envs, _ := o.envelope(t)["environments"].(map[string]any)
	limits, _ := envs["build_limits"].(map[string]any)
	if limits["size"] != "2MiB" || limits["timeout"] != "5m0s" || limits["memory"] != "3GiB" || limits["pids"] != float64(512) || limits["scratch"] != "512MiB" {
		t.Errorf("doctor's build_limits = %v", limits)
	}

	o = h.run("env", "build", "test/bulky", "--backend", "linux", "--json")
	if o.code != 5 || !strings.Contains(o.stdout, "ran out of space: the environment's size limit is 2MiB") {
		t.Errorf("env build with a 2MiB size limit: %d %s%s", o.code, o.stdout, o.stderr)
	}
	os.WriteFile(pol, []byte("env_build: {timeout: 5m}\n"), 0o644)
	if o := h.run("run", "test/bulky", "--backend", "linux", "--json"); o.code != 0 || !strings.Contains(o.stdout, `"version":"1.0"`) {
		t.Errorf("run with the default size limit: %d %s%s", o.code, o.stdout, o.stderr)
	}
}
