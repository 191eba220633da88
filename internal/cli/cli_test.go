package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// harness gives each test its own roots, cache, state and environment.
type harness struct {
	t       *testing.T
	project string // holds skills/ (the project root)
	data    string // absolute path of testdata/skills
	env     map[string]string
	// terminal makes standard input count as a terminal (Env.IsTerminal).
	terminal bool
}

// cliEnv is the Env of the harness's runs.
func (h *harness) cliEnv() Env {
	env := Env{
		Getenv:    func(k string) string { return h.env[k] },
		LookupEnv: func(k string) (string, bool) { v, ok := h.env[k]; return v, ok },
	}
	if h.terminal {
		env.IsTerminal = func(io.Reader) bool { return true }
	}
	return env
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed; run scripts/setup")
	}
	dir := t.TempDir()
	data, err := filepath.Abs("testdata/skills")
	if err != nil {
		t.Fatal(err)
	}
	project := filepath.Join(dir, "project")
	if err := os.CopyFS(filepath.Join(project, "skills"), os.DirFS(data)); err != nil {
		t.Fatal(err)
	}
	t.Chdir(project)
	return &harness{t: t, project: project, data: data, env: map[string]string{
		"HOME":           filepath.Join(dir, "home"),
		"XDG_CACHE_HOME": filepath.Join(dir, "cache"),
		"XDG_STATE_HOME": filepath.Join(dir, "state"),
	}}
}

type outcome struct {
	code           int
	stdout, stderr string
}

func (h *harness) run(args ...string) outcome {
	h.t.Helper()
	var out, errb bytes.Buffer
	env := h.cliEnv()
	code := RunContext(context.Background(), args, strings.NewReader(""), &out, &errb, env)
	return outcome{code, out.String(), errb.String()}
}

// envelope decodes a --json output, failing the test if stdout is not
// exactly one JSON object.
func (o outcome) envelope(t *testing.T) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(o.stdout))
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("stdout is not a JSON object: %v\nstdout: %s\nstderr: %s", err, o.stdout, o.stderr)
	}
	if dec.More() {
		t.Fatalf("stdout holds more than one JSON value: %s", o.stdout)
	}
	return m
}

func TestRunJSONSuccessEnvelope(t *testing.T) {
	h := newHarness(t)
	o := h.run("run", "test/echo", "--backend", "process", "--params", `{"msg":"hi"}`, "--json")
	if o.code != 0 {
		t.Fatalf("exit %d: %s %s", o.code, o.stdout, o.stderr)
	}
	m := o.envelope(t)
	if m["ok"] != true || m["backend"] != "process" {
		t.Errorf("bad envelope %v", m)
	}
	res := m["result"].(map[string]any)
	if res["params"].(map[string]any)["msg"] != "hi" {
		t.Errorf("params did not round-trip: %v", res)
	}
	sk := m["skill"].(map[string]any)
	if sk["id"] != "test/echo" || sk["version"] != "1.0.0" || sk["tier"] != "project" || !strings.HasPrefix(sk["digest"].(string), "sha256:") {
		t.Errorf("bad skill info %v", sk)
	}
	if _, ok := m["duration_ms"].(float64); !ok {
		t.Errorf("duration_ms missing: %v", m)
	}
	if !strings.Contains(m["stdout"].(string), "echo says hi") {
		t.Errorf("skill stdout not captured: %v", m["stdout"])
	}
}

func TestRunPlainOutput(t *testing.T) {
	h := newHarness(t)
	o := h.run("run", "test/echo", "--backend=process", "--params", `{"msg":"hi"}`)
	if o.code != 0 {
		t.Fatalf("exit %d: %s", o.code, o.stderr)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(o.stdout), &v); err != nil || !strings.Contains(o.stdout, "\n  ") {
		t.Fatalf("want indented JSON on stdout, got %q (%v)", o.stdout, err)
	}
	if !strings.Contains(o.stderr, "isolates nothing") {
		t.Errorf("process backend warning missing from stderr: %q", o.stderr)
	}
}

// Text output shows the result's numbers as the skill wrote them: a
// float64 rounded integers over 2^53, and made run fail (internal) on an
// integer beyond its range.
func TestRunPlainOutputKeepsNumbers(t *testing.T) {
	h := newHarness(t)
	big := "1" + strings.Repeat("0", 400) + "7"
	o := h.run("run", "test/echo", "--backend=process", "--params", `{"msg":"hi","n":9007199254740993,"big":`+big+`,"f":0.1}`)
	if o.code != 0 {
		t.Fatalf("exit %d: %s", o.code, o.stderr)
	}
	for _, want := range []string{`"n": 9007199254740993`, `"big": ` + big, `"f": 0.1`} {
		if !strings.Contains(o.stdout, want) {
			t.Errorf("stdout lacks %s: %.300q", want, o.stdout)
		}
	}
}

func TestRunEnvIsDenyByDefault(t *testing.T) {
	h := newHarness(t)
	h.env["ECHO_TOKEN"] = "s3cret"
	h.env["AWS_SECRET_ACCESS_KEY"] = "host-secret"
	o := h.run("run", "test/echo", "--backend", "process", "--json")
	res := o.envelope(t)["result"].(map[string]any)
	if res["token"] != nil {
		t.Errorf("ungranted variable reached the skill: %v", res["token"])
	}
	for _, name := range res["env"].([]any) {
		if name == "ECHO_TOKEN" || name == "AWS_SECRET_ACCESS_KEY" || name == "XDG_STATE_HOME" {
			t.Errorf("host variable %s reached the skill", name)
		}
	}
	o = h.run("run", "test/echo", "--backend", "process", "--allow-env", "ECHO_TOKEN", "--json")
	if res := o.envelope(t)["result"].(map[string]any); res["token"] != "s3cret" {
		t.Errorf("granted variable not given: %v", res["token"])
	}
}

func TestRunErrorKinds(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		kind string
		code int
		msg  string // substring of the message
	}{
		{"unknown command", []string{"frobnicate"}, nil, "invalid", 2, `unknown command "frobnicate"`},
		{"missing skill", []string{"run"}, nil, "invalid", 2, "want one SKILL"},
		{"bad timeout", []string{"run", "test/echo", "--timeout", "soon"}, nil, "invalid", 2, "--timeout"},
		{"bad memory", []string{"run", "test/echo", "--memory", "lots"}, nil, "invalid", 2, "--memory"},
		{"bad params JSON", []string{"run", "test/echo", "--params", "{"}, nil, "invalid", 2, "not valid JSON: unexpected end of JSON input at byte 1; give a JSON object"},
		{"params in shell quotes", []string{"run", "test/echo", "--params", "{'msg': 'x'}"}, nil, "invalid", 2, `not valid JSON: invalid character '\'' looking for beginning of object key string at byte 2`},
		{"params not an object", []string{"run", "test/echo", "--backend", "process", "--params", "[1]"}, nil, "invalid", 2, "JSON object"},
		{"params fail schema", []string{"run", "test/echo", "--backend", "process", "--params", `{"msg":3}`}, nil, "invalid", 2, "/msg"},
		{"both params flags", []string{"run", "test/echo", "--params", "{}", "--params-file", "x"}, nil, "invalid", 2, "not both"},
		{"unknown flag", []string{"run", "test/echo", "--frob"}, nil, "invalid", 2, "frob"},
		{"unknown backend", []string{"run", "test/echo", "--backend", "vm9"}, nil, "invalid", 2, `unknown backend "vm9"`},
		{"not found", []string{"run", "test/nope", "--backend", "process"}, nil, "not_found", 2, "test/nope"},
		{"bad manifest", []string{"run", "test/bad_manifest", "--backend", "process"}, nil, "invalid", 2, "parameters"},
		{"two classes", []string{"run", "test/two_classes", "--backend", "process"}, nil, "invalid", 2, "One"},
		{"required env granted but unset", []string{"run", "test/needs_env", "--backend", "process", "--allow-env", "NEEDS_TOKEN"}, nil, "invalid", 2, "not set"},
		{"network not granted", []string{"run", "test/wants_net", "--backend", "process"}, nil, "denied", 3, "--allow-net api.example.com:443"},
		{"network granted but unenforceable", []string{"run", "test/wants_net", "--backend", "process", "--allow-net", "api.example.com"}, nil, "unsupported", 5, "net-allowlist"},
		{"bad egress-resolve", []string{"run", "test/echo", "--egress-resolve", "api.example.com"}, nil, "invalid", 2, `--egress-resolve "api.example.com": want HOST=IP`},
		{"egress-resolve with a port", []string{"run", "test/echo", "--egress-resolve", "api.example.com:443=127.0.0.1"}, nil, "invalid", 2, "plain host name"},
		{"egress-resolve accepted", []string{"run", "test/wants_net", "--backend", "process", "--allow-net", "api.example.com", "--egress-resolve", "api.example.com=127.0.0.1"}, nil, "unsupported", 5, "net-allowlist"},
		{"memory on process", []string{"run", "test/echo", "--backend", "process", "--memory", "64MiB"}, nil, "unsupported", 5, "memory-limit"},
		{"skill raises", []string{"run", "test/raises", "--backend", "process"}, nil, "skill", 1, "ValueError: bad wallet address"},
		{"not JSON", []string{"run", "test/not_json", "--backend", "process"}, nil, "skill", 1, "ResultNotJSON"},
		{"worker exits", []string{"run", "test/exits", "--backend", "process"}, nil, "skill", 1, "code 3"},
		{"timeout", []string{"run", "test/sleeper", "--backend", "process", "--timeout", "1s"}, nil, "timeout", 4, "1s"},
		{"output limit", []string{"run", "test/big_output", "--backend", "process"}, nil, "limit", 4, "output"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			for k, v := range tt.env {
				h.env[k] = v
			}
			o := h.run(append(tt.args, "--json")...)
			if o.code != tt.code {
				t.Errorf("exit code %d, want %d (stdout %s, stderr %s)", o.code, tt.code, o.stdout, o.stderr)
			}
			m := o.envelope(t)
			e, _ := m["error"].(map[string]any)
			if m["ok"] != false || e == nil {
				t.Fatalf("want an error envelope, got %v", m)
			}
			if e["kind"] != tt.kind || !strings.Contains(e["message"].(string), tt.msg) {
				t.Errorf("error = %v; want kind %q and a message containing %q", e, tt.kind, tt.msg)
			}
			// Without --json: one line on stderr, nothing on stdout.
			o = h.run(tt.args...)
			if o.code != tt.code || o.stdout != "" && tt.name != "unknown command" {
				t.Errorf("plain: exit %d stdout %q", o.code, o.stdout)
			}
			first, _, _ := strings.Cut(o.stderr, "\n")
			if !strings.HasPrefix(first, "skillbox: "+tt.kind+": ") {
				t.Errorf("plain: stderr first line %q does not name kind %q", first, tt.kind)
			}
		})
	}
}

func TestRunExternalNeedsTrust(t *testing.T) {
	h := newHarness(t)
	ext := filepath.Join(t.TempDir(), "ext")
	if err := os.CopyFS(ext, os.DirFS(h.data)); err != nil {
		t.Fatal(err)
	}
	// Move the project root away so the id resolves in the external root.
	if err := os.RemoveAll(filepath.Join(h.project, "skills")); err != nil {
		t.Fatal(err)
	}
	h.env["SKILLWARE_SKILL_PATH"] = ext
	o := h.run("run", "test/echo", "--backend", "process", "--json")
	if o.code != 3 || !strings.Contains(o.stdout, "--trust-remote-code") {
		t.Fatalf("external skill without trust: exit %d, %s", o.code, o.stdout)
	}
	o = h.run("run", "test/echo", "--backend", "process", "--trust-remote-code", "--json")
	if o.code != 0 || o.envelope(t)["skill"].(map[string]any)["tier"] != "external" {
		t.Fatalf("with --trust-remote-code: exit %d, %s %s", o.code, o.stdout, o.stderr)
	}
}

func TestRunParamsFromStdinAndFile(t *testing.T) {
	h := newHarness(t)
	file := filepath.Join(t.TempDir(), "p.json")
	os.WriteFile(file, []byte(`{"msg":"from file"}`), 0o644)
	o := h.run("run", "test/echo", "--backend", "process", "--params-file", file, "--json")
	if !strings.Contains(o.stdout, "from file") {
		t.Fatalf("params file not used: %s %s", o.stdout, o.stderr)
	}
	o = h.run("run", "test/echo", "--backend", "process", "--params-file", filepath.Join(t.TempDir(), "missing.json"), "--json")
	if o.code != 2 {
		t.Fatalf("missing params file: exit %d", o.code)
	}
}

func TestAuditRecordsCallsAndDenials(t *testing.T) {
	h := newHarness(t)
	h.run("run", "test/echo", "--backend", "process", "--params", `{"msg":"very private"}`)
	h.run("run", "test/wants_net", "--backend", "process")
	// Failed calls whose messages quote the params: a schema violation and
	// a skill's exception.
	h.run("run", "test/echo", "--backend", "process", "--params", `{"msg":["very private"]}`)
	h.run("run", "test/raises", "--backend", "process", "--params", `{"msg":"very private"}`)
	data, err := os.ReadFile(filepath.Join(h.env["XDG_STATE_HOME"], "skillbox", "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "very private") || strings.Contains(string(data), "bad wallet address") {
		t.Errorf("audit log contains call params or a skill's message:\n%s", data)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 4 {
		t.Fatalf("want 4 audit records, got %d:\n%s", len(lines), data)
	}
	var invalid, raised map[string]any
	json.Unmarshal([]byte(lines[2]), &invalid)
	json.Unmarshal([]byte(lines[3]), &raised)
	if invalid["error_kind"] != "invalid" || !strings.Contains(invalid["error"].(string), "parameters schema") {
		t.Errorf("bad invalid-params record %v", invalid)
	}
	if raised["error_kind"] != "skill" || raised["error"] != "skill failed: ValueError (its message is not logged: it may quote the parameters)" {
		t.Errorf("bad skill-error record %v", raised)
	}
	var ok, denied map[string]any
	json.Unmarshal([]byte(lines[0]), &ok)
	json.Unmarshal([]byte(lines[1]), &denied)
	if ok["event"] != "call" || ok["outcome"] != "ok" || ok["backend"] != "process" || ok["params_sha256"] == nil {
		t.Errorf("bad call record %v", ok)
	}
	if denied["event"] != "denied" || denied["error_kind"] != "denied" || denied["skill"] != "test/wants_net" {
		t.Errorf("bad denial record %v", denied)
	}
}

func TestListInspectSchema(t *testing.T) {
	h := newHarness(t)
	o := h.run("list", "--json")
	if o.code != 0 {
		t.Fatalf("list: exit %d %s", o.code, o.stderr)
	}
	m := o.envelope(t)
	ids := map[string]string{}
	for _, s := range m["skills"].([]any) {
		s := s.(map[string]any)
		ids[s["id"].(string)] = s["tier"].(string)
	}
	if ids["test/echo"] != "project" || ids["text/word_stats"] != "bundled" {
		t.Errorf("list is missing skills or tiers: %v", ids)
	}
	if !strings.Contains(strings.Join(toStrings(m["errors"]), "\n"), "bad_manifest") {
		t.Errorf("broken bundle not reported: %v", m["errors"])
	}

	o = h.run("inspect", "test/needs_env", "--json")
	m = o.envelope(t)
	envReqs := m["requests"].(map[string]any)["env"].([]any)
	if len(envReqs) != 1 {
		t.Errorf("inspect lists %d env requests, want 1: %v", len(envReqs), envReqs)
	}
	req := envReqs[0].(map[string]any)
	if req["name"] != "NEEDS_TOKEN" || req["required"] != true || req["grant"] != "--allow-env NEEDS_TOKEN" {
		t.Errorf("inspect requests: %v", req)
	}
	o = h.run("inspect", "test/needs_env")
	if !strings.Contains(o.stdout, "grant with --allow-env NEEDS_TOKEN") {
		t.Errorf("inspect text: %s", o.stdout)
	}

	o = h.run("schema", "test/echo", "--format", "openai")
	var tool map[string]any
	if err := json.Unmarshal([]byte(o.stdout), &tool); err != nil || tool["function"].(map[string]any)["name"] != "test_echo" {
		t.Errorf("schema openai: %s %v", o.stdout, err)
	}
	o = h.run("schema", "test/echo", "--format", "yaml")
	if o.code != 2 {
		t.Errorf("schema with an unknown format: exit %d", o.code)
	}
}

func TestShadowingIsReported(t *testing.T) {
	h := newHarness(t)
	dst := filepath.Join(h.project, "skills", "text", "word_stats")
	if err := os.CopyFS(dst, os.DirFS(filepath.Join(h.data, "test", "echo"))); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dst, "manifest.yaml"), []byte("name: word_stats\nversion: \"9.9.9\"\ndescription: impostor\n"), 0o644)
	for _, args := range [][]string{{"list"}, {"inspect", "text/word_stats"}, {"run", "text/word_stats", "--backend", "process"}} {
		o := h.run(args...)
		if !strings.Contains(o.stderr, "shadows") {
			t.Errorf("%v: no shadowing warning on stderr: %q", args, o.stderr)
		}
	}
}

func TestDoctor(t *testing.T) {
	h := newHarness(t)
	o := h.run("doctor", "--json")
	m := o.envelope(t)
	found := false
	for _, b := range m["backends"].([]any) {
		if b.(map[string]any)["name"] == "process" {
			found = true
		}
	}
	if o.code != 0 || !found {
		t.Errorf("doctor: exit %d, %v", o.code, m)
	}
}

func TestHelp(t *testing.T) {
	h := newHarness(t)
	if o := h.run("help"); o.code != 0 || !strings.Contains(o.stdout, "run") {
		t.Errorf("help: %d %q", o.code, o.stdout)
	}
	if o := h.run(); o.code != 2 {
		t.Errorf("no args: exit %d, want 2", o.code)
	}
	if o := h.run("run", "-h"); o.code != 0 || !strings.Contains(o.stderr, "--allow-net") && !strings.Contains(o.stderr, "-allow-net") {
		t.Errorf("run -h: %d %q", o.code, o.stderr)
	}
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// TestNoHomeReadsNoWorkingDirectoryConfig: without HOME (and XDG_CONFIG_HOME)
// the configuration folder is not ".config/skillbox" of the working
// directory: a checkout shipping .config/skillbox/policy.yaml must not grant
// its own skill a secret. Trust commands refuse to write a store then.
func TestNoHomeReadsNoWorkingDirectoryConfig(t *testing.T) {
	h := newHarness(t)
	delete(h.env, "HOME")
	t.Setenv("HOME", "") // os.UserHomeDir reads the process's own HOME
	h.env["NEEDS_TOKEN"] = "stolen-secret"
	planted := filepath.Join(h.project, ".config", "skillbox")
	os.MkdirAll(planted, 0o755)
	os.WriteFile(filepath.Join(planted, "policy.yaml"), []byte("skills:\n  test/needs_env:\n    env: [NEEDS_TOKEN]\n"), 0o644)

	// The skill runs without the variable it requires (a warning names
	// the flag): the planted file granted nothing.
	o := h.run("run", "test/needs_env", "--backend", "process", "--json")
	if m := o.envelope(t); o.code != 0 || m["result"].(map[string]any)["token_length"] != float64(0) ||
		!strings.Contains(strings.Join(toStrings(m["warnings"]), "\n"), "grant with --allow-env NEEDS_TOKEN") {
		t.Fatalf("the working directory's policy was applied: exit %d %s", o.code, o.stdout)
	}
	// The same file, in a real configuration folder, does grant.
	h.env["XDG_CONFIG_HOME"] = filepath.Join(h.project, ".config")
	if o := h.run("run", "test/needs_env", "--backend", "process", "--json"); o.code != 0 || o.envelope(t)["result"].(map[string]any)["token_length"] != float64(len("stolen-secret")) {
		t.Fatalf("policy from XDG_CONFIG_HOME not applied: exit %d %s", o.code, o.stdout)
	}
	delete(h.env, "XDG_CONFIG_HOME")
	o = h.run("trust", filepath.Join(h.data, "test", "echo"), "--yes", "--json")
	if m := o.envelope(t); o.code == 0 || !strings.Contains(m["error"].(map[string]any)["message"].(string), "no trust store") {
		t.Errorf("trust without a configuration folder: exit %d %s", o.code, o.stdout)
	}
	if _, err := os.Stat(filepath.Join(h.project, "trust.json")); !os.IsNotExist(err) {
		t.Errorf("a trust store was written in the working directory: %v", err)
	}
}
