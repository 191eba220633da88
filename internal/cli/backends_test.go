package cli

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/sandbox"
)

// doctorConfig returns each backend's "config" object from doctor --json.
func doctorConfig(t *testing.T, m map[string]any) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, b := range m["backends"].([]any) {
		b := b.(map[string]any)
		cfg, ok := b["config"].(map[string]any)
		if !ok {
			t.Fatalf("backend %v has no config object: %v", b["name"], b)
		}
		out[b["name"].(string)] = cfg
	}
	return out
}

func registered(name string) bool {
	_, err := sandbox.Lookup(name)
	return err == nil
}

// doctor --json shows each backend's effective settings: the defaults,
// merged with the policy file's backends section (the default file or
// --policy).
func TestDoctorShowsBackendConfig(t *testing.T) {
	h := newHarness(t)
	m := h.run("doctor", "--json").envelope(t)
	cfg := doctorConfig(t, m)
	if len(cfg["process"]) != 0 {
		t.Errorf("process config = %v, want {}", cfg["process"])
	}
	if registered("linux") && cfg["linux"]["pool_size"] != float64(2*runtime.NumCPU()) {
		t.Errorf("linux default config = %v", cfg["linux"])
	}
	if _, ok := m["policy_error"]; ok {
		t.Errorf("policy_error without a policy file: %v", m["policy_error"])
	}

	dir := filepath.Join(h.env["HOME"], ".config", "skillbox")
	os.MkdirAll(dir, 0o755)
	text := "backends:\n  pyodide: {max_workers: 2, install: false}\n"
	if registered("linux") {
		text += "  linux: {pool_size: 3, min_idle: 0, idle_timeout: 2m}\n"
	}
	os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(text), 0o600)
	o := h.run("doctor", "--json")
	cfg = doctorConfig(t, o.envelope(t))
	if o.code != 0 || cfg["pyodide"]["max_workers"] != float64(2) || cfg["pyodide"]["install"] != false || cfg["pyodide"]["idle"] != float64(1) {
		t.Errorf("doctor: exit %d, pyodide config %v", o.code, cfg["pyodide"])
	}
	if registered("linux") {
		want := map[string]any{"pool_size": float64(3), "min_idle": float64(0), "idle_timeout": "2m0s", "exec": "auto", "prefork": true}
		for k, v := range want {
			if cfg["linux"][k] != v {
				t.Errorf("linux %s = %v, want %v (config %v)", k, cfg["linux"][k], v, cfg["linux"])
			}
		}
		if o := h.run("doctor"); !strings.Contains(o.stdout, "config: exec=auto idle_timeout=2m0s min_idle=0 pool_size=3 prefork=true release_after=5m0s") {
			t.Errorf("doctor text does not show the linux config:\n%s", o.stdout)
		}
	}

	// --policy names another file.
	other := filepath.Join(t.TempDir(), "p.yaml")
	os.WriteFile(other, []byte("backends:\n  pyodide: {idle: 3}\n"), 0o600)
	cfg = doctorConfig(t, h.run("doctor", "--json", "--policy", other).envelope(t))
	if cfg["pyodide"]["idle"] != float64(3) || cfg["pyodide"]["max_workers"] != float64(4) {
		t.Errorf("--policy: pyodide config %v", cfg["pyodide"])
	}
}

// A bad backends entry: run refuses with invalid (exit 2) naming FILE:LINE;
// doctor still reports, saying why the file is not used.
func TestBackendsPolicyErrors(t *testing.T) {
	h := newHarness(t)
	path := filepath.Join(t.TempDir(), "p.yaml")
	os.WriteFile(path, []byte("version: 1\nbackends:\n  pyodide:\n    max_workers: lots\n"), 0o600)
	want := path + `:4: backends.pyodide.max_workers: must be an integer, got "lots"`

	o := h.run("run", "test/needs_env", "--backend", "process", "--policy", path, "--json")
	m := o.envelope(t)
	e := m["error"].(map[string]any)
	if o.code != 2 || e["kind"] != "invalid" || !strings.Contains(e["message"].(string), want) {
		t.Errorf("run: exit %d %v; want invalid naming %q", o.code, m, want)
	}

	o = h.run("doctor", "--json", "--policy", path)
	m = o.envelope(t)
	if o.code != 0 || !strings.Contains(m["policy_error"].(string), want) {
		t.Errorf("doctor: exit %d, policy_error %v; want %q", o.code, m["policy_error"], want)
	}
	if cfg := doctorConfig(t, m); cfg["pyodide"]["max_workers"] != float64(4) {
		t.Errorf("doctor with a bad file shows %v, want the defaults", cfg["pyodide"])
	}
	if o := h.run("doctor", "--policy", path); o.code != 0 || !strings.Contains(o.stdout, "policy file not used (defaults shown): ") {
		t.Errorf("doctor text: exit %d\n%s", o.code, o.stdout)
	}
}

// --backend-setting NAME.KEY=VALUE sets a backend's setting as the policy
// file would, over the file's value for the same key; run, serve and doctor
// take it, and a bad one is invalid naming the flag.
func TestBackendSettingFlag(t *testing.T) {
	h := newHarness(t)
	path := filepath.Join(t.TempDir(), "p.yaml")
	os.WriteFile(path, []byte("backends:\n  pyodide: {max_workers: 2, idle: 3}\n"), 0o600)
	o := h.run("doctor", "--json", "--policy", path, "--backend-setting", "pyodide.max_workers=5", "--backend-setting", "pyodide.install=false")
	m := o.envelope(t)
	if _, ok := m["policy_error"]; ok || o.code != 0 {
		t.Fatalf("doctor: exit %d, policy_error %v", o.code, m["policy_error"])
	}
	if cfg := doctorConfig(t, m)["pyodide"]; cfg["max_workers"] != float64(5) || cfg["idle"] != float64(3) || cfg["install"] != false {
		t.Errorf("pyodide config %v, want max_workers 5 (flag over file), idle 3 (file), install false (flag)", cfg)
	}
	for _, tt := range []struct{ arg, want string }{
		{"pyodide.max_workers=lots", `--backend-setting pyodide.max_workers=lots: must be an integer, got "lots"`},
		{"pyodide.colour=red", `--backend-setting pyodide.colour=red: unknown setting "colour" (known: idle, install, max_workers, recycle)`},
		{"nosuch.x=1", `--backend-setting nosuch.x=1: unknown backend "nosuch"`},
		{"pyodide=1", `--backend-setting "pyodide=1": want NAME.KEY=VALUE`},
	} {
		o := h.run("run", "test/needs_env", "--backend", "process", "--json", "--backend-setting", tt.arg)
		m := o.envelope(t)
		e, _ := m["error"].(map[string]any)
		if o.code != 2 || e["kind"] != "invalid" || !strings.Contains(e["message"].(string), tt.want) {
			t.Errorf("run --backend-setting %s: exit %d %v; want invalid naming %q", tt.arg, o.code, m, tt.want)
		}
		// serve has no --json: the same error on stderr, before it listens.
		if o := h.run("serve", "--http", "127.0.0.1:0", "--backend-setting", tt.arg); o.code != 2 || !strings.Contains(o.stderr, "invalid: "+tt.want) {
			t.Errorf("serve --backend-setting %s: exit %d %s; want invalid naming %q", tt.arg, o.code, o.stderr, tt.want)
		}
	}
}
