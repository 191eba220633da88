package cli

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// plainSkill is an unmodified Skillware skill: its manifest has no
// permissions block. It reports the variables it sees, reads the file
// params.path and fetches params.urls.
const plainManifest = `name: plain
version: "1.0.0"
description: A Skillware skill without a permissions block.
env_vars:
  LISTED: {description: optional, required: false}
`

const plainCode = `import urllib.error
import urllib.request

from skillware.core.base_skill import BaseSkill


class Plain(BaseSkill):
    def execute(self, params):
        out = {"extra": self.credential("EXTRA"), "listed": self.credential("LISTED"), "urls": {}}
        if params.get("path"):
            try:
                with open(params["path"]) as f:
                    out["file"] = f.read()
            except OSError as e:
                out["file_err"] = str(e)
        for u in params.get("urls", []):
            try:
                with urllib.request.urlopen(u, timeout=10) as r:
                    out["urls"][u] = r.status
            except urllib.error.HTTPError as e:
                out["urls"][u] = e.code
            except Exception as e:
                out["urls"][u] = type(e).__name__
        return out
`

// addPlain puts test/plain among the harness's project skills.
func (h *harness) addPlain() {
	h.t.Helper()
	dir := filepath.Join(h.project, "skills", "test", "plain")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		h.t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "manifest.yaml"), []byte(plainManifest), 0o644)
	os.WriteFile(filepath.Join(dir, "skill.py"), []byte(plainCode), 0o644)
}

// lastAudit returns the last record of the harness's audit log that is
// not an egress record (those of a call may be written after it).
func (h *harness) lastAudit() map[string]any {
	h.t.Helper()
	data, err := os.ReadFile(filepath.Join(h.env["XDG_STATE_HOME"], "skillbox", "audit.jsonl"))
	if err != nil {
		h.t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		var rec map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &rec); err != nil {
			h.t.Fatal(err)
		}
		if rec["event"] != "egress" {
			return rec
		}
	}
	h.t.Fatalf("no call record in the audit log:\n%s", data)
	return nil
}

func params(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// run's --allow-env and --allow-read grant to a skill without a
// permissions block as given; the audit record holds them and says they
// were the operator's alone.
func TestRunGrantsNoBlockManifest(t *testing.T) {
	h := newHarness(t)
	h.addPlain()
	h.env["EXTRA"], h.env["LISTED"] = "extra-value", "listed-value"
	data := t.TempDir()
	os.WriteFile(filepath.Join(data, "in.txt"), []byte("host data"), 0o644)
	p := params(t, map[string]any{"path": filepath.Join(data, "in.txt")})

	o := h.run("run", "test/plain", "--backend", "process", "--allow-env", "EXTRA", "--allow-env", "LISTED", "--allow-read", data, "--params", p, "--json")
	m := o.envelope(t)
	res, _ := m["result"].(map[string]any)
	if o.code != 0 || res["extra"] != "extra-value" || res["listed"] != "listed-value" || res["file"] != "host data" {
		t.Fatalf("exit %d: %s %s", o.code, o.stdout, o.stderr)
	}
	rec := h.lastAudit()
	g, _ := rec["grants"].(map[string]any)
	if rec["event"] != "call" || g == nil || toJSON(g["env"]) != `["EXTRA","LISTED"]` || toJSON(g["read"]) != toJSON([]string{data}) || g["operator_only"] != true {
		t.Errorf("audit record %v", rec)
	}

	// Without the grant the variable is absent, and only the env_vars
	// entry is given: nothing else reaches the skill.
	o = h.run("run", "test/plain", "--backend", "process", "--allow-env", "LISTED", "--json")
	res, _ = o.envelope(t)["result"].(map[string]any)
	if o.code != 0 || res["extra"] != nil || res["listed"] != "listed-value" {
		t.Fatalf("exit %d: %s", o.code, o.stdout)
	}
	if g, _ := h.lastAudit()["grants"].(map[string]any); g["operator_only"] != nil {
		t.Errorf("operator_only for a grant of an env_vars entry: %v", g)
	}
}

// A required variable of env_vars that is not granted: the call runs
// without it and the warning names the flag (it used to be denied, exit
// 3); the policy's missing_env: refuse restores the denial.
func TestRunMissingRequiredEnv(t *testing.T) {
	h := newHarness(t)
	h.env["NEEDS_TOKEN"] = "tok"
	o := h.run("run", "test/needs_env", "--backend", "process", "--json")
	m := o.envelope(t)
	want := "env NEEDS_TOKEN: skill test/needs_env requires it (env_vars) and it is not granted, so the skill runs without it (grant with --allow-env NEEDS_TOKEN)"
	if o.code != 0 || m["result"].(map[string]any)["token_length"] != float64(0) || !strings.Contains(strings.Join(toStrings(m["warnings"]), "\n"), want) {
		t.Fatalf("exit %d: %s", o.code, o.stdout)
	}
	if rec := h.lastAudit(); rec["outcome"] != "ok" || !strings.Contains(toJSON(rec["warnings"]), "--allow-env NEEDS_TOKEN") {
		t.Errorf("audit record %v", rec)
	}
	if o := h.run("run", "test/needs_env", "--backend", "process"); o.code != 0 || !strings.Contains(o.stderr, "skillbox: warning: "+want) {
		t.Errorf("plain: exit %d stderr %s", o.code, o.stderr)
	}

	pol := filepath.Join(t.TempDir(), "policy.yaml")
	os.WriteFile(pol, []byte("version: 1\nmissing_env: refuse\n"), 0o600)
	o = h.run("run", "test/needs_env", "--backend", "process", "--policy", pol, "--json")
	e, _ := o.envelope(t)["error"].(map[string]any)
	if o.code != 3 || e["kind"] != "denied" || !strings.Contains(e["message"].(string), "(missing_env: refuse at "+pol+":2) (grant with --allow-env NEEDS_TOKEN, or env: [NEEDS_TOKEN] under skills[\"test/needs_env\"] in "+pol+")") {
		t.Errorf("missing_env: refuse: exit %d %s", o.code, o.stdout)
	}
	if rec := h.lastAudit(); rec["event"] != "denied" {
		t.Errorf("audit record %v", rec)
	}
	// The skill's own entry overrides the top level.
	os.WriteFile(pol, []byte("missing_env: refuse\nskills:\n  test/needs_env:\n    missing_env: warn\n"), 0o600)
	if o := h.run("run", "test/needs_env", "--backend", "process", "--policy", pol, "--json"); o.code != 0 {
		t.Errorf("missing_env: warn for the skill: exit %d %s", o.code, o.stdout)
	}
}

// A failed call's warnings go with its error: in the --json error
// envelope, and after the error line on stderr.
func TestRunErrorCarriesWarnings(t *testing.T) {
	h := newHarness(t)
	o := h.run("run", "test/raises", "--backend", "process", "--json")
	m := o.envelope(t)
	if o.code != 1 || !strings.Contains(strings.Join(toStrings(m["warnings"]), "\n"), "isolates nothing") {
		t.Errorf("exit %d: %s", o.code, o.stdout)
	}
	o = h.run("run", "test/raises", "--backend", "process")
	if first, _, _ := strings.Cut(o.stderr, "\n"); o.code != 1 || !strings.HasPrefix(first, "skillbox: skill: ") || !strings.Contains(o.stderr, "skillbox: warning: backend process isolates nothing") {
		t.Errorf("plain: exit %d stderr %s", o.code, o.stderr)
	}
}

// serve grants a skill without a permissions block only from its entry
// in the policy file: its --allow-env/--allow-net flags keep meaning
// "if requested" (and say so), the policy entry gives.
func TestServeGrantsNoBlockOnlyFromPolicy(t *testing.T) {
	h := newHarness(t)
	h.addPlain()
	h.env["EXTRA"], h.env["POLICY_VAR"] = "extra-value", "policy-value"
	call := func(url string) map[string]any {
		t.Helper()
		resp, err := http.Post(url+"/v1/skills/test/plain/call", "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var got map[string]any
		json.NewDecoder(resp.Body).Decode(&got)
		return got
	}
	url := h.startServeHTTP("--backend", "process", "--allow-env", "EXTRA")
	got := call(url)
	if res, _ := got["result"].(map[string]any); got["ok"] != true || res["extra"] != nil {
		t.Fatalf("serve's --allow-env reached a skill without a permissions block: %v", got)
	}
	if w := strings.Join(toStrings(got["warnings"]), "\n"); !strings.Contains(w, `--allow-env EXTRA: skill test/plain does not request it, so it is not given (its manifest has no permissions block: grant it to this skill alone with env: [EXTRA] under skills["test/plain"] in`) {
		t.Errorf("warnings %s", w)
	}

	pol := filepath.Join(t.TempDir(), "policy.yaml")
	os.WriteFile(pol, []byte("skills:\n  test/plain:\n    env: [POLICY_VAR]\n"), 0o600)
	os.WriteFile(filepath.Join(h.project, "skills", "test", "plain", "skill.py"), []byte(strings.Replace(plainCode, `self.credential("EXTRA")`, `self.credential("EXTRA") or self.credential("POLICY_VAR")`, 1)), 0o644)
	url = h.startServeHTTP("--backend", "process", "--allow-env", "EXTRA", "--policy", pol)
	got = call(url)
	if res, _ := got["result"].(map[string]any); got["ok"] != true || res["extra"] != "policy-value" {
		t.Fatalf("the policy entry did not grant: %v", got)
	}
	if rec := h.lastAudit(); toJSON(rec["grants"].(map[string]any)["env"]) != `["POLICY_VAR"]` || rec["grants"].(map[string]any)["operator_only"] != true {
		t.Errorf("audit record %v", rec)
	}
}

// On the linux backend run's --allow-net grants a skill without a
// permissions block the host as given (through the egress proxy, to a
// loopback test server); a request to a host the grant does not cover is
// refused by the proxy and reported in the warnings with the flag that
// grants it. Without any network grant, the harness's hint reports the
// destination the skill tried.
func TestRunNetGrantNoBlockLinux(t *testing.T) {
	requireLinuxBackend(t)
	h := newHarness(t)
	h.addPlain()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "hi") }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	granted, other := "http://api.test:"+port+"/", "http://other.test:"+port+"/"
	p := params(t, map[string]any{"urls": []string{granted, other}})

	o := h.run("run", "test/plain", "--backend", "linux", "--allow-net", "api.test:"+port, "--egress-resolve", "api.test=127.0.0.1", "--params", p, "--json")
	m := o.envelope(t)
	urls, _ := m["result"].(map[string]any)["urls"].(map[string]any)
	if o.code != 0 || urls[granted] != float64(200) || urls[other] != float64(403) {
		t.Fatalf("exit %d: %s %s", o.code, o.stdout, o.stderr)
	}
	want := fmt.Sprintf("egress denied: the skill tried to reach other.test:%s, which is not granted (grant with --allow-net other.test:%s)", port, port)
	if w := strings.Join(toStrings(m["warnings"]), "\n"); !strings.Contains(w, want) || strings.Contains(w, "api.test:"+port+",") {
		t.Errorf("warnings lack %q:\n%s", want, w)
	}
	rec := h.lastAudit()
	if g := rec["grants"].(map[string]any); toJSON(g["network"]) != `["api.test:`+port+`"]` || g["operator_only"] != true || !strings.Contains(toJSON(rec["warnings"]), "other.test:"+port) {
		t.Errorf("audit record %v", rec)
	}

	// No network grant: no proxy, an empty network namespace; the harness
	// reports what the skill tried, as a hint.
	o = h.run("run", "test/plain", "--backend", "linux", "--params", params(t, map[string]any{"urls": []string{other}}), "--json")
	m = o.envelope(t)
	want = fmt.Sprintf("the skill tried to reach other.test:%s, which is not granted (a hint, not a control: grant with --allow-net other.test:%s)", port, port)
	if w := strings.Join(toStrings(m["warnings"]), "\n"); o.code != 0 || !strings.Contains(w, want) {
		t.Errorf("exit %d: warnings lack %q:\n%s", o.code, want, o.stdout)
	}
}

// lock SKILL treats its flags as run does (for that skill alone), so that
// run --locked with the same flags matches, and a wider grant drifts.
func TestLockGrantsNoBlockManifest(t *testing.T) {
	h := newHarness(t)
	h.addPlain()
	h.env["EXTRA"], h.env["OTHER"] = "e", "o"
	if o := h.run("lock", "test/plain", "--allow-env", "EXTRA"); o.code != 0 {
		t.Fatalf("lock: exit %d %s", o.code, o.stderr)
	}
	data, _ := os.ReadFile(filepath.Join(h.project, "skills.lock"))
	if !strings.Contains(string(data), `"EXTRA"`) {
		t.Errorf("the grant was not locked:\n%s", data)
	}
	o := h.run("run", "test/plain", "--backend", "process", "--locked", "--allow-env", "EXTRA", "--json")
	if res, _ := o.envelope(t)["result"].(map[string]any); o.code != 0 || res["extra"] != "e" {
		t.Errorf("run --locked with the locked grant: exit %d %s", o.code, o.stdout)
	}
	if o := h.run("run", "test/plain", "--backend", "process", "--locked", "--allow-env", "EXTRA", "--allow-env", "OTHER", "--json"); o.code != 3 {
		t.Errorf("run --locked with a wider grant: exit %d %s", o.code, o.stdout)
	}
}
