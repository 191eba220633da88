package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/internal/shellquote"
	"github.com/skillbox-dev/skillbox/internal/trust"
)

// external moves the test skills to an external root and returns it.
func (h *harness) external() string {
	h.t.Helper()
	ext := filepath.Join(h.t.TempDir(), "ext")
	if err := os.CopyFS(ext, os.DirFS(h.data)); err != nil {
		h.t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(h.project, "skills")); err != nil {
		h.t.Fatal(err)
	}
	h.env["SKILLWARE_SKILL_PATH"] = ext
	h.env["XDG_CONFIG_HOME"] = filepath.Join(h.t.TempDir(), "config")
	return ext
}

func (h *harness) auditRecords() []map[string]any {
	h.t.Helper()
	data, err := os.ReadFile(filepath.Join(h.env["XDG_STATE_HOME"], "skillbox", "audit.jsonl"))
	if err != nil {
		h.t.Fatal(err)
	}
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			h.t.Fatalf("audit line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func hasEvent(recs []map[string]any, event, outcome string) bool {
	for _, r := range recs {
		if r["event"] == event && (outcome == "" || r["outcome"] == outcome) {
			return true
		}
	}
	return false
}

func TestTrustStoreGate(t *testing.T) {
	h := newHarness(t)
	ext := h.external()
	run := []string{"run", "test/echo", "--backend", "process", "--json"}

	// Without a terminal, trust refuses to guess.
	o := h.run("trust", "test/echo")
	if o.code != 2 || !strings.Contains(o.stderr, "--yes") || !strings.Contains(o.stdout, "env ECHO_TOKEN (optional)") {
		t.Fatalf("trust without a terminal: exit %d\n%s\n%s", o.code, o.stdout, o.stderr)
	}
	if o := h.run(run...); o.code != 3 {
		t.Fatalf("refused trust must not trust: exit %d", o.code)
	}
	o = h.run("trust", "test/echo", "--yes", "--json")
	if o.code != 0 || o.envelope(t)["action"] != "trusted" {
		t.Fatalf("trust --yes: exit %d %s %s", o.code, o.stdout, o.stderr)
	}
	storePath := filepath.Join(h.env["XDG_CONFIG_HOME"], "skillbox", "trust.json")
	if fi, err := os.Stat(storePath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("trust store: %v %v", fi, err)
	}
	o = h.run(run...)
	if o.code != 0 {
		t.Fatalf("trusted skill refused: %s %s", o.stdout, o.stderr)
	}

	// Change the bundle: denied again, naming the files.
	os.WriteFile(filepath.Join(ext, "test", "echo", "extra.py"), []byte("x = 1\n"), 0o644)
	os.WriteFile(filepath.Join(ext, "test", "echo", "skill.py"), []byte("# changed\n"), 0o644)
	o = h.run(run...)
	msg := o.stdout
	if o.code != 3 || !strings.Contains(msg, "added: extra.py") || !strings.Contains(msg, "modified: skill.py") {
		t.Fatalf("changed bundle: exit %d %s", o.code, msg)
	}
	// The review shows the diff.
	o = h.run("trust", "test/echo")
	if !strings.Contains(o.stdout, "Changed since you trusted it") || !strings.Contains(o.stdout, "added: extra.py") {
		t.Errorf("re-trust review lacks the diff: %s", o.stdout)
	}

	o = h.run("untrust", "test/echo")
	if o.code != 0 {
		t.Fatalf("untrust: %d %s", o.code, o.stderr)
	}
	if o := h.run("untrust", "test/echo", "--json"); o.code != 2 || o.envelope(t)["error"].(map[string]any)["kind"] != "not_found" {
		t.Errorf("untrust twice: %d %s", o.code, o.stdout)
	}
	recs := h.auditRecords()
	for _, ev := range []string{"trust", "untrust", "denied", "call"} {
		if !hasEvent(recs, ev, "") {
			t.Errorf("no %q audit record", ev)
		}
	}
	if !hasEvent(recs, "trust", "error") {
		t.Error("the refused trust (no terminal) is not audited")
	}
}

func TestTrustPrompt(t *testing.T) {
	h := newHarness(t)
	h.external()
	h.terminal = true
	o := h.runStdin("n\n", "trust", "test/echo")
	if o.code != 0 || !strings.Contains(o.stdout, "Not trusted") {
		t.Fatalf("answer n: %d %s %s", o.code, o.stdout, o.stderr)
	}
	if !hasEvent(h.auditRecords(), "trust", "declined") {
		t.Error("declined trust not audited")
	}
	o = h.runStdin("y\n", "trust", "test/echo")
	if o.code != 0 || !strings.Contains(o.stdout, "Trusted test/echo") {
		t.Fatalf("answer y: %d %s %s", o.code, o.stdout, o.stderr)
	}
	if o := h.run("run", "test/echo", "--backend", "process"); o.code != 0 {
		t.Errorf("run after trust: %d %s", o.code, o.stderr)
	}
}

func TestMalformedTrustStoreFailsClosed(t *testing.T) {
	h := newHarness(t)
	h.external()
	p := filepath.Join(h.env["XDG_CONFIG_HOME"], "skillbox", "trust.json")
	os.MkdirAll(filepath.Dir(p), 0o700)
	os.WriteFile(p, []byte(`{"version": 1, "skills": [{"id": "test/echo", "digest": "*"}]`), 0o600)
	o := h.run("run", "test/echo", "--backend", "process", "--json")
	if o.code != 2 || !strings.Contains(o.stdout, "trust store") || !strings.Contains(o.stdout, "nothing in it is trusted") {
		t.Fatalf("malformed store: exit %d %s", o.code, o.stdout)
	}
	if o := h.run("trust", "test/echo", "--yes"); o.code != 2 {
		t.Errorf("trust must not overwrite a malformed store: exit %d", o.code)
	}
}

func TestSignVerifyPublisherGate(t *testing.T) {
	h := newHarness(t)
	ext := h.external()
	keys := filepath.Join(t.TempDir(), "acme")
	if o := h.run("keygen", "--out", keys); o.code != 0 {
		t.Fatalf("keygen: %d %s", o.code, o.stderr)
	}
	if fi, _ := os.Stat(keys + ".key"); fi == nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("secret key mode: %v", fi)
	}
	if o := h.run("keygen", "--out", keys); o.code != 2 {
		t.Errorf("keygen must not overwrite: %d", o.code)
	}
	if o := h.run("sign", "test/echo", "--key", keys+".key", "--json"); o.code != 0 {
		t.Fatalf("sign: %d %s %s", o.code, o.stdout, o.stderr)
	}
	if _, err := os.Stat(filepath.Join(ext, "test", "echo", "skill.minisig")); err != nil {
		t.Fatal(err)
	}
	if o := h.run("verify", "test/echo", "--pubkey", keys+".pub"); o.code != 0 || !strings.Contains(o.stdout, "Good signature") {
		t.Fatalf("verify: %d %s %s", o.code, o.stdout, o.stderr)
	}
	// Signed but by an untrusted publisher: still denied.
	if o := h.run("verify", "test/echo", "--json"); o.code != 3 || !strings.Contains(o.stdout, "skillbox trust --publisher") {
		t.Errorf("verify without trusted keys: %d %s", o.code, o.stdout)
	}
	run := []string{"run", "test/echo", "--backend", "process", "--json"}
	if o := h.run(run...); o.code != 3 {
		t.Fatalf("signed by unknown key ran: %d", o.code)
	}
	if o := h.run("trust", "--publisher", keys+".pub", "--name", "acme", "--yes"); o.code != 0 {
		t.Fatalf("trust --publisher: %d %s", o.code, o.stderr)
	}
	o := h.run(run...)
	if o.code != 0 {
		t.Fatalf("signed by a trusted publisher: %d %s", o.code, o.stdout)
	}
	recs := h.auditRecords()
	if last := recs[len(recs)-1]; !strings.Contains(last["trust"].(string), "acme") {
		t.Errorf("audit lacks why it was trusted: %v", last)
	}
	// Tamper: denied, and verify says why.
	os.WriteFile(filepath.Join(ext, "test", "echo", "skill.py"), []byte("import os\n"), 0o644)
	if o := h.run(run...); o.code != 3 || !strings.Contains(o.stdout, "changed after it was signed") {
		t.Errorf("tampered signed skill: %d %s", o.code, o.stdout)
	}
	// Malformed signature: a clear error, never a pass.
	os.WriteFile(filepath.Join(ext, "test", "echo", "skill.minisig"), []byte("junk"), 0o644)
	if o := h.run("verify", "test/echo", "--pubkey", keys+".pub", "--json"); o.code != 2 || !strings.Contains(o.stdout, "malformed") {
		t.Errorf("malformed signature: %d %s", o.code, o.stdout)
	}
	if o := h.run(run...); o.code == 0 {
		t.Error("malformed signature passed the gate")
	}
	if o := h.run("untrust", "--publisher", "acme"); o.code != 0 {
		t.Errorf("untrust --publisher: %d %s", o.code, o.stderr)
	}
	recs = h.auditRecords()
	for _, ev := range []string{"sign", "verify", "publisher", "unpublisher"} {
		if !hasEvent(recs, ev, "") {
			t.Errorf("no %q audit record", ev)
		}
	}
}

func TestLockAndLocked(t *testing.T) {
	h := newHarness(t)
	if o := h.run("lock", "test/echo", "--allow-env", "ECHO_TOKEN", "--json"); o.code != 0 {
		t.Fatalf("lock: %d %s %s", o.code, o.stdout, o.stderr)
	}
	data, err := os.ReadFile(filepath.Join(h.project, "skills.lock"))
	if err != nil || !strings.Contains(string(data), `"ECHO_TOKEN"`) || !strings.Contains(string(data), `"test/echo"`) {
		t.Fatalf("skills.lock: %s %v", data, err)
	}
	h.env["ECHO_TOKEN"] = "t"
	run := []string{"run", "test/echo", "--backend", "process", "--locked", "--json"}
	if o := h.run(append(run, "--allow-env", "ECHO_TOKEN")...); o.code != 0 {
		t.Fatalf("locked run: %d %s", o.code, o.stdout)
	}
	if o := h.run("run", "test/raises", "--backend", "process", "--locked", "--json"); o.code != 3 || !strings.Contains(o.stdout, "not in the lockfile") {
		t.Errorf("unlocked skill: %d %s", o.code, o.stdout)
	}
	if o := h.run(append(run, "--timeout", "5m")...); o.code != 3 || !strings.Contains(o.stdout, "timeout") {
		t.Errorf("wider timeout: %d %s", o.code, o.stdout)
	}
	os.WriteFile(filepath.Join(h.project, "skills", "test", "echo", "new.txt"), []byte("x"), 0o644)
	if o := h.run(run...); o.code != 3 || !strings.Contains(o.stdout, "lockfile digest") {
		t.Errorf("changed bundle: %d %s", o.code, o.stdout)
	}
	os.WriteFile(filepath.Join(h.project, "skills.lock"), []byte(`{"version": 1, "skills": {"test/echo": {"digest": "nope"}}}`), 0o644)
	if o := h.run(run...); o.code != 2 || !strings.Contains(o.stdout, "lockfile") {
		t.Errorf("malformed lockfile: %d %s", o.code, o.stdout)
	}
	if o := h.run("run", "test/echo", "--backend", "process", "--locked", "--lockfile", "missing.lock", "--json"); o.code != 2 || !strings.Contains(o.stdout, "skillbox lock") {
		t.Errorf("missing lockfile: %d %s", o.code, o.stdout)
	}
	// lock with no arguments locks every loadable skill.
	o := h.run("lock")
	if o.code != 0 || !strings.Contains(o.stdout, "text/word_stats") || !strings.Contains(o.stderr, "not locked: test/wants_net") {
		t.Errorf("lock all: %d %s %s", o.code, o.stdout, o.stderr)
	}
	if o := h.run("lock", "test/wants_net"); o.code != 3 || !strings.Contains(o.stderr, "--allow-net api.example.com:443") {
		t.Errorf("lock a skill that would be denied: %d %s", o.code, o.stderr)
	}
	// A required variable that is not granted no longer denies a call
	// (it runs without it, with a warning), so the skill is locked.
	if o := h.run("lock", "test/needs_env"); o.code != 0 || !strings.Contains(o.stdout, "locked test/needs_env") {
		t.Errorf("lock a skill missing a required variable: %d %s %s", o.code, o.stdout, o.stderr)
	}
}

func TestSecretsNeverLeakBeyondGrant(t *testing.T) {
	h := newHarness(t)
	h.env["AWS_SECRET_ACCESS_KEY"] = "host-secret"
	h.env["ECHO_TOKEN"] = "from-host"
	dir := t.TempDir()
	envFile := filepath.Join(dir, ".env")
	os.WriteFile(envFile, []byte("ECHO_TOKEN=from-file\nOTHER_SECRET=nope\n"), 0o600)
	o := h.run("run", "test/echo", "--backend", "process", "--env-file", envFile, "--json")
	res := o.envelope(t)["result"].(map[string]any)
	if res["token"] != nil {
		t.Errorf("ungranted variable from an env file reached the skill: %v", res["token"])
	}
	for _, name := range res["env"].([]any) {
		switch name {
		case "ECHO_TOKEN", "OTHER_SECRET", "AWS_SECRET_ACCESS_KEY", "SKILLWARE_SKILL_PATH", "XDG_STATE_HOME", "HOME_SECRET":
			t.Errorf("%s reached the skill", name)
		}
	}
	o = h.run("run", "test/echo", "--backend", "process", "--env-file", envFile, "--allow-env", "ECHO_TOKEN", "--json")
	res = o.envelope(t)["result"].(map[string]any)
	if res["token"] != "from-file" {
		t.Errorf("the env file must win over the host: %v", res["token"])
	}
	for _, name := range res["env"].([]any) {
		if name == "OTHER_SECRET" || name == "AWS_SECRET_ACCESS_KEY" {
			t.Errorf("%s reached the skill", name)
		}
	}
	sd := filepath.Join(dir, "secrets")
	os.Mkdir(sd, 0o700)
	os.WriteFile(filepath.Join(sd, "NEEDS_TOKEN"), []byte("tok\n"), 0o600)
	if o := h.run("run", "test/needs_env", "--backend", "process", "--secrets-dir", sd, "--allow-env", "NEEDS_TOKEN"); o.code != 0 {
		t.Errorf("secret from a folder: %d %s", o.code, o.stderr)
	}
	// A value without a grant is not given: the call runs without it.
	o = h.run("run", "test/needs_env", "--backend", "process", "--secrets-dir", sd, "--json")
	if m := o.envelope(t); o.code != 0 || m["result"].(map[string]any)["token_length"] != float64(0) ||
		!strings.Contains(strings.Join(toStrings(m["warnings"]), "\n"), "grant with --allow-env NEEDS_TOKEN") {
		t.Errorf("a value without a grant must not be given: %d %s", o.code, o.stdout)
	}
	bad := filepath.Join(dir, "bad.env")
	os.WriteFile(bad, []byte("ECHO_TOKEN=\"unterminated\n"), 0o600)
	if o := h.run("run", "test/echo", "--backend", "process", "--env-file", bad, "--json"); o.code != 2 || !strings.Contains(o.stdout, bad+":1") || strings.Contains(o.stdout, "unterminated\"") {
		t.Errorf("malformed env file: %d %s", o.code, o.stdout)
	}
}

func TestPolicyFile(t *testing.T) {
	h := newHarness(t)
	h.env["XDG_CONFIG_HOME"] = filepath.Join(t.TempDir(), "config")
	pol := filepath.Join(h.env["XDG_CONFIG_HOME"], "skillbox", "policy.yaml")
	os.MkdirAll(filepath.Dir(pol), 0o700)
	h.env["NEEDS_TOKEN"] = "t"
	os.WriteFile(pol, []byte("ceilings:\n  max_timeout: 10s\nskills:\n  test/needs_env:\n    env: [NEEDS_TOKEN]\n"), 0o600)
	if o := h.run("run", "test/needs_env", "--backend", "process"); o.code != 0 {
		t.Fatalf("standing grant from the default policy: %d %s", o.code, o.stderr)
	}
	o := h.run("run", "test/echo", "--backend", "process", "--timeout", "1m", "--json")
	if o.code != 3 || !strings.Contains(o.stdout, "max_timeout 10s ("+pol+":2)") {
		t.Errorf("ceiling: %d %s", o.code, o.stdout)
	}
	other := filepath.Join(t.TempDir(), "p.yaml")
	os.WriteFile(other, []byte("ceilings:\n  allow_process: false\n"), 0o600)
	if o := h.run("run", "test/echo", "--backend", "process", "--policy", other, "--json"); o.code != 3 || !strings.Contains(o.stdout, "allow_process: false") {
		t.Errorf("allow_process: %d %s", o.code, o.stdout)
	}
	os.WriteFile(other, []byte("ceilings:\n  allow_proces: false\n"), 0o600)
	if o := h.run("run", "test/echo", "--backend", "process", "--policy", other, "--json"); o.code != 2 || !strings.Contains(o.stdout, other+":2") {
		t.Errorf("typo in policy must fail closed: %d %s", o.code, o.stdout)
	}
	if o := h.run("run", "test/echo", "--backend", "process", "--policy", filepath.Join(t.TempDir(), "none.yaml")); o.code != 2 {
		t.Errorf("a named policy file must exist: %d", o.code)
	}
}

func TestAllowRead(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	if o := h.run("run", "test/echo", "--backend", "process", "--allow-read", dir); o.code != 0 {
		t.Fatalf("allow-read on process: %d %s", o.code, o.stderr)
	}
	rec := h.auditRecords()[0]
	if g := rec["grants"].(map[string]any); g["read"] == nil {
		t.Errorf("read grant not audited: %v", rec)
	}
	if o := h.run("run", "test/echo", "--backend", "process", "--allow-read", filepath.Join(dir, "missing"), "--json"); o.code != 2 {
		t.Errorf("missing read path: %d %s", o.code, o.stdout)
	}
}

func TestAuditCommand(t *testing.T) {
	h := newHarness(t)
	if o := h.run("audit", "--json"); o.code != 0 || len(o.envelope(t)["records"].([]any)) != 0 {
		t.Fatalf("empty log: %d %s", o.code, o.stdout)
	}
	h.run("run", "test/echo", "--backend", "process")
	h.run("run", "test/wants_net", "--backend", "process")
	path := filepath.Join(h.env["XDG_STATE_HOME"], "skillbox", "audit.jsonl")
	data, _ := os.ReadFile(path)
	lines := strings.SplitAfter(string(data), "\n")
	os.WriteFile(path, []byte(lines[0]+"garbage\n"+lines[1]+`{"time":"20`), 0o600)
	o := h.run("audit", "--json")
	m := o.envelope(t)
	if o.code != 0 || len(m["records"].([]any)) != 2 {
		t.Fatalf("audit: %d %s", o.code, o.stdout)
	}
	probs := m["problems"].([]any)
	if len(probs) != 2 || probs[0].(map[string]any)["line"] != 2.0 || probs[1].(map[string]any)["torn"] != true {
		t.Errorf("problems: %v", probs)
	}
	if !strings.Contains(o.stderr, "line 2: malformed") || !strings.Contains(o.stderr, "torn") {
		t.Errorf("problems not reported on stderr: %s", o.stderr)
	}
	o = h.run("audit", "--skill", "test/wants_net", "--json")
	if recs := o.envelope(t)["records"].([]any); len(recs) != 1 || recs[0].(map[string]any)["event"] != "denied" {
		t.Errorf("--skill: %v", recs)
	}
	if o := h.run("audit", "--since", "1h"); o.code != 0 || !strings.Contains(o.stdout, "test/echo") {
		t.Errorf("--since: %d %s", o.code, o.stdout)
	}
	if o := h.run("audit", "--since", "yesterday"); o.code != 2 {
		t.Errorf("bad --since: %d", o.code)
	}
}

func (h *harness) runStdin(stdin string, args ...string) outcome {
	h.t.Helper()
	var out, errb strings.Builder
	env := h.cliEnv()
	code := RunContext(context.Background(), args, strings.NewReader(stdin), &out, &errb, env)
	return outcome{code, out.String(), errb.String()}
}

// TestTrustCommandsWaitForTheStoreLock holds the trust store's lock while
// trust, untrust and the publisher commands run: none may change the store
// until it is released, and then every change is in it, none lost.
func TestTrustCommandsWaitForTheStoreLock(t *testing.T) {
	h := newHarness(t)
	h.external()
	keys := t.TempDir()
	for _, k := range []string{"k1", "k2"} {
		if o := h.run("keygen", "--out", filepath.Join(keys, k)); o.code != 0 {
			t.Fatalf("keygen: %d %s", o.code, o.stderr)
		}
	}
	for _, args := range [][]string{
		{"trust", "test/raises", "--yes"},
		{"trust", "--publisher", filepath.Join(keys, "k2.pub"), "--name", "k2", "--yes"},
	} {
		if o := h.run(args...); o.code != 0 {
			t.Fatalf("%v: %d %s", args, o.code, o.stderr)
		}
	}
	storePath := filepath.Join(h.env["XDG_CONFIG_HOME"], "skillbox", "trust.json")
	before, err := os.ReadFile(storePath)
	if err != nil {
		t.Fatal(err)
	}
	cmds := [][]string{
		{"trust", "test/echo", "--yes"},
		{"untrust", "test/raises"},
		{"trust", "--publisher", filepath.Join(keys, "k1.pub"), "--name", "k1", "--yes"},
		{"untrust", "--publisher", "k2"},
	}
	type done struct {
		i int
		o outcome
	}
	results := make(chan done, len(cmds))
	errHold := errors.New("held")
	err = trust.Update(storePath, func(*trust.Store) error {
		for i, args := range cmds {
			go func() { results <- done{i, h.run(args...)} }()
		}
		select {
		case d := <-results:
			t.Errorf("%v finished while another process held the store's lock: %d %s", cmds[d.i], d.o.code, d.o.stderr)
			results <- d
		case <-time.After(1500 * time.Millisecond):
		}
		if now, _ := os.ReadFile(storePath); !bytes.Equal(now, before) {
			t.Errorf("the store changed while its lock was held:\n%s", now)
		}
		return errHold // change nothing
	})
	if !errors.Is(err, errHold) {
		t.Fatalf("holding the lock: %v", err)
	}
	for range cmds {
		select {
		case d := <-results:
			if d.o.code != 0 {
				t.Errorf("%v: exit %d %s", cmds[d.i], d.o.code, d.o.stderr)
			}
		case <-time.After(time.Minute):
			t.Fatal("a command did not finish after the lock was released")
		}
	}
	st, err := trust.Open(storePath)
	if err != nil {
		t.Fatal(err)
	}
	var skills, pubs []string
	for _, e := range st.Skills {
		skills = append(skills, e.ID)
	}
	for _, p := range st.Publishers {
		pubs = append(pubs, p.Name)
	}
	if !slices.Equal(skills, []string{"test/echo"}) || !slices.Equal(pubs, []string{"k1"}) {
		t.Errorf("after the commands the store holds skills %v and publishers %v; want [test/echo] and [k1]", skills, pubs)
	}
}

// The trust gate's hints name a skill so that the printed command trusts
// the same bundle: by its id when the id resolves to it, else by its
// folder (a skill nested deeper in a root has an id naming another one).
func TestTrustHintNamesTheSameBundle(t *testing.T) {
	h := newHarness(t)
	ext := h.external()
	nested := filepath.Join(ext, "vendor", "test", "echo")
	if err := os.CopyFS(nested, os.DirFS(filepath.Join(ext, "test", "echo"))); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(nested, "extra.py"), []byte("x = 1\n"), 0o644)
	byPath := "'skillbox trust " + shellquote.Word(nested) + "'"
	if o := h.run("run", nested, "--backend", "process", "--json"); o.code != 3 || !strings.Contains(o.stdout, byPath) {
		t.Errorf("untrusted, nested, by path: exit %d, want 3 and %s in %s", o.code, byPath, o.stdout)
	}
	if o := h.run("run", "test/echo", "--backend", "process", "--json"); o.code != 3 || !strings.Contains(o.stdout, "'skillbox trust test/echo'") {
		t.Errorf("untrusted, by id: exit %d %s", o.code, o.stdout)
	}
	// The hint, followed, trusts that bundle; changed, it is named so again.
	if o := h.run("trust", nested, "--yes"); o.code != 0 {
		t.Fatalf("trust by path: %d %s %s", o.code, o.stdout, o.stderr)
	}
	if o := h.run("run", nested, "--backend", "process", "--json"); o.code != 0 {
		t.Fatalf("trusted by path: %d %s", o.code, o.stdout)
	}
	os.WriteFile(filepath.Join(nested, "extra.py"), []byte("x = 2\n"), 0o644)
	if o := h.run("run", nested, "--backend", "process", "--json"); o.code != 3 || !strings.Contains(o.stdout, "modified: extra.py") || !strings.Contains(o.stdout, byPath) {
		t.Errorf("changed, nested, by path: exit %d, want 3 and %s in %s", o.code, byPath, o.stdout)
	}
}

// A skill reference is the caller's text, recorded as given when it names
// no skill: `skillbox audit` shows it on its own row, with its newlines and
// tabs as escapes, so that it cannot print rows of calls that never ran.
func TestAuditTextShowsOneRowPerRecord(t *testing.T) {
	h := newHarness(t)
	forged := "2026-01-01 00:00:00\tcall\tcrypto/wallet_check\tok\tlinux\t"
	h.run("run", "test/nope\n"+forged+"\n", "--backend", "process")
	o := h.run("audit")
	if o.code != 0 {
		t.Fatalf("audit: %d %s", o.code, o.stderr)
	}
	lines := strings.Split(strings.TrimSuffix(o.stdout, "\n"), "\n")
	if len(lines) != 2 {
		t.Errorf("one record printed as %d lines, want a header and one row:\n%s", len(lines), o.stdout)
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "2026-01-01") {
			t.Errorf("a skill reference printed a row of its own: %q", l)
		}
	}
	if !strings.Contains(o.stdout, `test/nope\n2026-01-01`) {
		t.Errorf("the reference is not shown escaped:\n%s", o.stdout)
	}
}
