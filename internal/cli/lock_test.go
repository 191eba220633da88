package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// lastCallTimeout is the timeout the last call in the audit log ran under.
func (h *harness) lastCallTimeout() any {
	h.t.Helper()
	recs := h.auditRecords()
	g, _ := recs[len(recs)-1]["grants"].(map[string]any)
	return g["timeout"]
}

// The lockfile's limits are the defaults of a locked run: 'lock --timeout
// 5s' then 'run --locked' runs with 5s (it was refused for asking the
// manifest's 30s), and a longer locked timeout is given too. A limit given
// on the command line still wins, and is refused if it exceeds the lock,
// with a fix that keeps what was asked rather than re-locking at 30s.
func TestLockedRunTakesTheLockedLimits(t *testing.T) {
	h := newHarness(t)
	run := []string{"run", "test/echo", "--backend", "process", "--locked", "--json"}
	if o := h.run("lock", "test/echo", "--timeout", "5s"); o.code != 0 {
		t.Fatalf("lock: %d %s %s", o.code, o.stdout, o.stderr)
	}
	if o := h.run(run...); o.code != 0 {
		t.Fatalf("run --locked after lock --timeout 5s: %d %s", o.code, o.stdout)
	}
	if got := h.lastCallTimeout(); got != "5s" {
		t.Errorf("locked run ran with timeout %v, want the locked 5s", got)
	}
	if o := h.run(append(run, "--timeout", "2s")...); o.code != 0 || h.lastCallTimeout() != "2s" {
		t.Errorf("a shorter --timeout: exit %d %s, timeout %v", o.code, o.stdout, h.lastCallTimeout())
	}
	o := h.run(append(run, "--timeout", "10s")...)
	if o.code != 3 || !strings.Contains(o.stdout, "'skillbox lock test/echo --timeout 10s'") || !strings.Contains(o.stdout, "--timeout 5s or less") {
		t.Errorf("a longer --timeout: %d %s", o.code, o.stdout)
	}
	// Drift of the files: the fix keeps the locked 5s.
	os.WriteFile(filepath.Join(h.project, "skills", "test", "echo", "new.txt"), []byte("x"), 0o644)
	o = h.run(run...)
	if o.code != 3 || !strings.Contains(o.stdout, "'skillbox lock test/echo --timeout 5s'") {
		t.Fatalf("changed bundle: %d %s", o.code, o.stdout)
	}
	if o := h.run(hintCommand(t, errMessage(t, o))[1:]...); o.code != 0 {
		t.Fatalf("the suggested lock: %d %s", o.code, o.stderr)
	}
	if o := h.run(run...); o.code != 0 || h.lastCallTimeout() != "5s" {
		t.Errorf("after the suggested lock: exit %d %s, timeout %v", o.code, o.stdout, h.lastCallTimeout())
	}
	// A locked timeout longer than the manifest's is the default too.
	if o := h.run("lock", "test/echo", "--timeout", "45s"); o.code != 0 {
		t.Fatalf("lock: %d %s", o.code, o.stderr)
	}
	if o := h.run(run...); o.code != 0 || h.lastCallTimeout() != "45s" {
		t.Errorf("lock --timeout 45s: exit %d %s, timeout %v", o.code, o.stdout, h.lastCallTimeout())
	}
	// A policy ceiling lowered since the lock wins: the run is not refused
	// for a --timeout it was never given.
	pol := filepath.Join(t.TempDir(), "policy.yaml")
	os.WriteFile(pol, []byte("ceilings:\n  max_timeout: 20s\n"), 0o600)
	if o := h.run(append(run, "--policy", pol)...); o.code != 0 || h.lastCallTimeout() != "20s" {
		t.Errorf("policy ceiling under the lock: exit %d %s, timeout %v", o.code, o.stdout, h.lastCallTimeout())
	}
}

// Hints print commands that work as printed: a skill run by a path (here
// one with a space, outside every skill root) is named by that path,
// quoted, in the lock and trust hints — not by its id, which resolves to
// nothing (not_found) — and running the printed command fixes the drift.
func TestHintsWorkAsPrinted(t *testing.T) {
	h := newHarness(t)
	h.env["XDG_CONFIG_HOME"] = filepath.Join(t.TempDir(), "config")
	ref := "./my skills/demo/hello"
	if err := os.CopyFS(ref, os.DirFS(filepath.Join(h.data, "test", "echo"))); err != nil {
		t.Fatal(err)
	}
	lockPath := filepath.Join(t.TempDir(), "ci locks", "skills.lock")
	if o := h.run("lock", ref, "--lockfile", lockPath, "--allow-env", "ECHO_TOKEN"); o.code != 0 {
		t.Fatalf("lock: %d %s %s", o.code, o.stdout, o.stderr)
	}
	run := []string{"run", ref, "--backend", "process", "--trust-remote-code", "--allow-env", "ECHO_TOKEN", "--locked", "--lockfile", lockPath, "--json"}
	if o := h.run(run...); o.code != 0 {
		t.Fatalf("run --locked: %d %s", o.code, o.stdout)
	}
	os.WriteFile(filepath.Join(ref, "new.txt"), []byte("x"), 0o644)
	o := h.run(run...)
	cmd := hintCommand(t, errMessage(t, o))
	if o.code != 3 || strings.Join(cmd, " ") != "skillbox lock "+ref+" --lockfile "+lockPath+" --allow-env ECHO_TOKEN" {
		t.Fatalf("drift by path: exit %d %s\ncommand %q", o.code, o.stdout, cmd)
	}
	if o := h.run(cmd[1:]...); o.code != 0 {
		t.Fatalf("the printed command failed: %d %s", o.code, o.stderr)
	}
	if o := h.run(run...); o.code != 0 {
		t.Errorf("run --locked after the printed command: %d %s", o.code, o.stdout)
	}

	// A missing lockfile: the printed command creates the one looked for.
	missing := filepath.Join(t.TempDir(), "none", "skills.lock")
	o = h.run("run", ref, "--backend", "process", "--trust-remote-code", "--locked", "--lockfile", missing, "--json")
	if o.code != 2 || !strings.Contains(o.stdout, "'skillbox lock --lockfile "+missing+"'") {
		t.Errorf("missing lockfile: %d %s", o.code, o.stdout)
	}

	// Trust of a skill run by path: the trust hint names its folder, quoted.
	if o := h.run("trust", ref, "--yes"); o.code != 0 {
		t.Fatalf("trust: %d %s %s", o.code, o.stdout, o.stderr)
	}
	os.WriteFile(filepath.Join(ref, "skill.py"), []byte("# changed\n"), 0o644)
	o = h.run("run", ref, "--backend", "process", "--json")
	cmd = hintCommand(t, errMessage(t, o))
	if o.code != 3 || len(cmd) != 3 || cmd[1] != "trust" {
		t.Fatalf("trust drift by path: exit %d %s\ncommand %q", o.code, o.stdout, cmd)
	}
	if o := h.run(append(cmd[1:], "--yes")...); o.code != 0 {
		t.Fatalf("the printed trust command failed: %d %s %s", o.code, o.stdout, o.stderr)
	}
	// (The skill is broken now, but it is trusted: no denial.)
	if o := h.run("run", ref, "--backend", "process", "--json"); o.code == 3 {
		t.Errorf("still denied after the printed trust command: %s", o.stdout)
	}

	// A project skill's note names the skill as given.
	o = h.run("trust", "./skills/test/echo")
	if o.code != 0 || !strings.Contains(o.stdout, "'skillbox lock ./skills/test/echo'") {
		t.Errorf("trust of a project skill: %d %s", o.code, o.stdout)
	}
}

// errMessage is the message of a --json error envelope.
func errMessage(t *testing.T, o outcome) string {
	t.Helper()
	e, _ := o.envelope(t)["error"].(map[string]any)
	msg, _ := e["message"].(string)
	return msg
}

// hintCommand returns the words of the first command a message prints in
// single quotes as "(grant with 'skillbox ...'", unquoting the double-quoted
// words as a POSIX shell would.
func hintCommand(t *testing.T, msg string) []string {
	t.Helper()
	_, rest, ok := strings.Cut(msg, "grant with 'skillbox ")
	if !ok {
		t.Fatalf("no command in %s", msg)
	}
	line := "skillbox " + rest[:strings.IndexByte(rest, '\'')]
	var words []string
	var w strings.Builder
	in, started := false, false
	for i := 0; i < len(line); i++ {
		switch ch := line[i]; {
		case ch == '"':
			in, started = !in, true
		case ch == '\\' && in && i+1 < len(line):
			i++
			w.WriteByte(line[i])
		case ch == ' ' && !in:
			if started {
				words = append(words, w.String())
				w.Reset()
				started = false
			}
		default:
			w.WriteByte(ch)
			started = true
		}
	}
	if started {
		words = append(words, w.String())
	}
	return words
}
