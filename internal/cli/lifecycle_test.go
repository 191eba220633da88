package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/skillbox-dev/skillbox/sandbox"
)

// runCtx is h.run under ctx.
func (h *harness) runCtx(ctx context.Context, args ...string) outcome {
	h.t.Helper()
	var out, errb bytes.Buffer
	env := Env{
		Getenv:    func(k string) string { return h.env[k] },
		LookupEnv: func(k string) (string, bool) { v, ok := h.env[k]; return v, ok },
	}
	code := RunContext(ctx, args, strings.NewReader(""), &out, &errb, env)
	return outcome{code, out.String(), errb.String()}
}

// Ctrl-C during a call (the context Run cancels on SIGINT) is the kind
// canceled and exit 130, with --json and without; the audit record says
// canceled too.
func TestRunCancelledExits130(t *testing.T) {
	h := newHarness(t)
	for _, jsonOut := range []bool{true, false} {
		args := []string{"run", "test/sleeper", "--backend", "process"}
		if jsonOut {
			args = append(args, "--json")
		}
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(500*time.Millisecond, cancel)
		o := h.runCtx(ctx, args...)
		cancel()
		if o.code != 130 {
			t.Errorf("json=%v: exit %d (stdout %s, stderr %s); want 130", jsonOut, o.code, o.stdout, o.stderr)
		}
		if jsonOut {
			m := o.envelope(t)
			if e, _ := m["error"].(map[string]any); m["ok"] != false || e["kind"] != "canceled" {
				t.Errorf("envelope %v; want kind canceled", m)
			}
		} else if !strings.HasPrefix(o.stderr, "skillbox: canceled: ") {
			t.Errorf("stderr %q; want it to name the kind canceled", o.stderr)
		}
	}
	data, _ := os.ReadFile(filepath.Join(h.env["XDG_STATE_HOME"], "skillbox", "audit.jsonl"))
	if strings.Count(string(data), `"error_kind":"canceled"`) != 2 {
		t.Errorf("audit log:\n%s", data)
	}
}

// The policy's "warm: true" for a skill makes its run warm: "warm": true in
// the --json envelope and the audit record, a note on stderr without
// --json. Any other skill, and the default, show no "warm" at all. run has
// no --warm flag (a one-shot run gains nothing from it).
func TestRunWarmFromPolicy(t *testing.T) {
	h := newHarness(t)
	pol := filepath.Join(t.TempDir(), "policy.yaml")
	os.WriteFile(pol, []byte("skills:\n  test/echo:\n    warm: true\n"), 0o600)

	requireLinuxBackend(t) // the backend that runs a warm skill warm
	o := h.run("run", "test/echo", "--backend", "linux", "--json")
	if m := o.envelope(t); m["ok"] != true || m["warm"] != nil {
		t.Errorf("default: envelope %v; want no warm", m)
	}
	o = h.run("run", "test/echo", "--backend", "linux", "--policy", pol, "--json")
	if m := o.envelope(t); m["ok"] != true || m["warm"] != true {
		t.Errorf("warm: true: envelope %v; want \"warm\": true", m)
	}
	o = h.run("run", "test/exits", "--backend", "linux", "--policy", pol, "--json")
	if strings.Contains(o.stdout, `"warm"`) {
		t.Errorf("another skill: %s", o.stdout)
	}
	o = h.run("run", "test/echo", "--backend", "linux", "--policy", pol)
	if o.code != 0 || !strings.Contains(o.stderr, "calls of this skill may share state that its import created") {
		t.Errorf("plain warm run: exit %d, stderr %q", o.code, o.stderr)
	}
	data, _ := os.ReadFile(filepath.Join(h.env["XDG_STATE_HOME"], "skillbox", "audit.jsonl"))
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 4 {
		t.Fatalf("audit log:\n%s", data)
	}
	for i, want := range []bool{false, true, false, true} {
		var r map[string]any
		json.Unmarshal([]byte(lines[i]), &r)
		if (r["warm"] == true) != want || !want && r["warm"] != nil {
			t.Errorf("audit record %d: warm %v, want %v", i, r["warm"], want)
		}
	}
	if o := h.run("run", "test/echo", "--warm", "--backend", "process", "--json"); o.code != 2 || !strings.Contains(o.stdout, "warm") {
		t.Errorf("run --warm: exit %d %s; want invalid (serve only)", o.code, o.stdout)
	}
}

// A policy file with a bad trusted_environments entry stops run and serve
// with invalid naming FILE:LINE; a good one runs.
func TestPolicyTrustedEnvironments(t *testing.T) {
	h := newHarness(t)
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("version: 1\ntrusted_environments:\n  - python:relative/python3\n"), 0o600)
	for _, args := range [][]string{
		{"run", "test/echo", "--backend", "process", "--policy", bad, "--json"},
		{"serve", "--stdio", "--policy", bad},
	} {
		o := h.run(args...)
		if o.code != 2 || !strings.Contains(o.stdout+o.stderr, bad+":3: trusted_environments[0]") {
			t.Errorf("%s: exit %d, %s; want invalid naming %s:3", args[0], o.code, o.stdout, bad)
		}
	}
	good := filepath.Join(t.TempDir(), "good.yaml")
	os.WriteFile(good, []byte("trusted_environments: [\"python:/usr/bin/python3\", \"sha256:"+strings.Repeat("a", 64)+"\"]\n"), 0o600)
	if o := h.run("run", "test/echo", "--backend", "process", "--policy", good, "--json"); o.code != 0 {
		t.Errorf("good trusted_environments: exit %d %s %s", o.code, o.stdout, o.stderr)
	}
}

// serve --warm ID: calls of that skill carry "warm": true in their MCP
// _meta; other skills' do not.
func TestServeWarm(t *testing.T) {
	h := newHarness(t)
	requireLinuxBackend(t) // the backend that runs a warm skill warm
	cs, inW, code, stderr := h.serveStdio("--backend", "linux", "--warm", "test/echo", "--warm", "test/nope")
	defer func() {
		cs.Close()
		inW.Close()
		<-code
	}()
	ctx := context.Background()
	for _, tc := range []struct {
		tool string
		args map[string]any
		warm bool
	}{{"test_echo", map[string]any{"msg": "hi"}, true}, {"text_word_stats", map[string]any{"text": "a b"}, false}} {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tc.tool, Arguments: tc.args})
		if err != nil || res.IsError {
			t.Fatalf("%s: %v %+v", tc.tool, err, res)
		}
		b, _ := json.Marshal(res.Meta)
		if strings.Contains(string(b), `"warm":true`) != tc.warm {
			t.Errorf("%s: _meta %s; want warm %v", tc.tool, b, tc.warm)
		}
	}
	if log := stderr.String(); !strings.Contains(log, "skill=test/nope") || !strings.Contains(log, "not served") {
		t.Errorf("no warning for a --warm skill that is not served: %s", log)
	}
}

// requireLinuxBackend skips where the linux jail cannot be built (not
// root and no unprivileged user namespaces, a missing layer).
func requireLinuxBackend(t *testing.T) {
	t.Helper()
	d, err := sandbox.Lookup("linux")
	if err != nil {
		t.Skipf("linux backend not registered: %v", err)
	}
	if c := d.Probe(context.Background()); !c.Available {
		t.Skipf("linux backend unavailable on this host: %s", c.Reason)
	}
}
