package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/internal/jail"
	"github.com/skillbox-dev/skillbox/internal/skillenv"
	"github.com/skillbox-dev/skillbox/internal/skillenv/envtest"
)

// TestEnvCommands: env build builds a skill's environment ahead of its
// first call (from the loopback index pip is configured with), with a
// progress line; env list shows it; a run and inspect use it; env prune
// spares it while a call holds it and removes it after.
func TestEnvCommands(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: environments are built in a jail")
	}
	if err := jail.Usable(); err != nil {
		t.Skipf("host cannot build jails: %v", err)
	}
	if _, err := skillenv.PipWheel(); err != nil {
		t.Skip(err)
	}
	h := newHarness(t)
	wheels := t.TempDir()
	envtest.Wheel(t, wheels, "alpha", "1.0", "VERSION = '1.0'\n")
	url, _ := envtest.Index(t, wheels)
	h.env["PIP_INDEX_URL"], h.env["PIP_CONFIG_FILE"] = url, os.DevNull
	dir := filepath.Join(h.project, "skills", "test", "withreq")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "manifest.yaml"), []byte("name: withreq\nversion: \"1\"\ndescription: d\nrequirements: [\"alpha\"]\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "skill.py"), []byte(`import alpha
from skillware.core.base_skill import BaseSkill
class S(BaseSkill):
    def execute(self, params):
        return {"alpha": alpha.VERSION}
`), 0o644)

	o := h.run("inspect", "test/withreq")
	if o.code != 0 || !strings.Contains(o.stdout, "not built yet") || !strings.Contains(o.stdout, "skillbox env build test/withreq") {
		t.Errorf("inspect before the build: %d\n%s%s", o.code, o.stdout, o.stderr)
	}
	o = h.run("env", "build", "test/withreq", "--backend", "linux")
	if o.code != 0 || !strings.Contains(o.stdout, "alpha==1.0") || !strings.Contains(o.stderr, "skillbox: building the environment of test/withreq") {
		t.Fatalf("env build: %d\n%s%s", o.code, o.stdout, o.stderr)
	}
	o = h.run("env", "list", "--json")
	envs, _ := o.envelope(t)["environments"].([]any)
	if o.code != 0 || len(envs) != 1 {
		t.Fatalf("env list: %d %s", o.code, o.stdout)
	}
	e := envs[0].(map[string]any)
	if res, _ := e["resolved"].([]any); len(res) != 1 || res[0] != "alpha==1.0" || e["size"].(float64) <= 0 || !strings.HasPrefix(e["key"].(string), "sha256:") ||
		!strings.HasPrefix(fmt.Sprint(e["digest"]), "sha256:") || e["digest"] == e["key"] {
		t.Errorf("env list: %v", e)
	}
	o = h.run("run", "test/withreq", "--backend", "linux", "--json")
	if o.code != 0 || !strings.Contains(o.stdout, `"alpha":"1.0"`) || strings.Contains(o.stderr, "building the environment") {
		t.Errorf("run: %d\n%s%s", o.code, o.stdout, o.stderr)
	}
	o = h.run("inspect", "test/withreq")
	if !strings.Contains(o.stdout, "with environment") || !strings.Contains(o.stdout, "alpha==1.0") {
		t.Errorf("inspect after the build:\n%s", o.stdout)
	}
	o = h.run("doctor", "--json")
	if d, _ := o.envelope(t)["environments"].(map[string]any); d == nil || d["built"].(float64) != 1 {
		t.Errorf("doctor: %v", d)
	}

	// lock records the resolved set, which --locked runs.
	if o = h.run("lock", "test/withreq"); o.code != 0 {
		t.Fatalf("lock: %d %s%s", o.code, o.stdout, o.stderr)
	}
	lockPath := filepath.Join(h.project, "skills.lock")
	data, err := os.ReadFile(lockPath)
	if err != nil || !strings.Contains(string(data), `"alpha==1.0 sha256=`) {
		t.Fatalf("the lockfile lacks the resolved set: %v\n%s", err, data)
	}
	if o = h.run("run", "test/withreq", "--backend", "linux", "--locked", "--json"); o.code != 0 {
		t.Errorf("run --locked: %d %s%s", o.code, o.stdout, o.stderr)
	}
	// A locked call runs only the recorded set: one the index cannot
	// serve is unavailable, naming it (envlock_linux_test.go has more).
	os.WriteFile(lockPath, []byte(strings.Replace(string(data), `"alpha==1.0 sha256=`, `"alpha==0.9 sha256=`, 1)), 0o644)
	if o = h.run("run", "test/withreq", "--backend", "linux", "--locked", "--json"); o.code != 5 || !strings.Contains(o.stdout, "alpha==0.9") {
		t.Errorf("run --locked of a set the index lacks: %d %s%s", o.code, o.stdout, o.stderr)
	}

	// A running call holds its environment: prune spares it.
	c := &skillenv.Cache{Dir: filepath.Join(h.env["XDG_CACHE_HOME"], "skillbox", "envs")}
	release, err := c.Use(e["key"].(string))
	if err != nil {
		t.Fatal(err)
	}
	o = h.run("env", "prune", "--json")
	pr := o.envelope(t)
	// (The locked run's environment, from the recorded set, is not held:
	// prune removes it.)
	if rm, _ := pr["removed"].([]any); len(rm) != 1 || rm[0].(map[string]any)["key"] == e["key"] {
		t.Errorf("prune removed an environment in use, or not the unused one: %s", o.stdout)
	}
	if iu, _ := pr["in_use"].([]any); len(iu) != 1 || iu[0].(map[string]any)["key"] != e["key"] {
		t.Errorf("prune: %s", o.stdout)
	}
	release()
	o = h.run("env", "prune")
	if o.code != 0 || !strings.Contains(o.stdout, "removed ") || !strings.Contains(o.stdout, "alpha") {
		t.Errorf("prune: %d %s%s", o.code, o.stdout, o.stderr)
	}
	if o = h.run("env", "list", "--json"); len(o.envelope(t)["environments"].([]any)) != 0 {
		t.Errorf("after prune: %s", o.stdout)
	}
	if o = h.run("env", "frob"); o.code != 2 {
		t.Errorf("unknown subcommand: %d %s", o.code, o.stderr)
	}
}
