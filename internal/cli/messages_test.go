package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// runWith runs the CLI with stdin as standard input.
func (h *harness) runWith(stdin io.Reader, args ...string) outcome {
	h.t.Helper()
	var out, errb bytes.Buffer
	env := h.cliEnv()
	code := RunContext(context.Background(), args, stdin, &out, &errb, env)
	return outcome{code, out.String(), errb.String()}
}

// A text-mode error names its kind once: "skillbox: denied: trust: …",
// not "skillbox: denied: denied: trust: …". The --json message keeps the
// "denied: " prefix the README documents.
func TestTextErrorNamesItsKindOnce(t *testing.T) {
	h := newHarness(t)
	h.external()
	o := h.run("run", "test/echo", "--backend", "process")
	if o.code != 3 {
		t.Fatalf("exit %d: %s", o.code, o.stderr)
	}
	if !strings.HasPrefix(o.stderr, "skillbox: denied: trust: ") || strings.Contains(o.stderr, "denied: denied") {
		t.Errorf("stderr %q", o.stderr)
	}
	o = h.run("run", "test/echo", "--backend", "process", "--json")
	if msg := o.envelope(t)["error"].(map[string]any)["message"].(string); !strings.HasPrefix(msg, "denied: trust: ") {
		t.Errorf("--json message changed: %q", msg)
	}
	if got := withoutKind("timeout: x", errdefs.Denied); got != "timeout: x" {
		t.Errorf("another kind's prefix was dropped: %q", got)
	}
}

// Every grant hint reads as "grant with <a command, flag or setting>".
func TestGrantHintsRead(t *testing.T) {
	h := newHarness(t)
	h.external()
	keys := filepath.Join(t.TempDir(), "acme")
	if o := h.run("keygen", "--out", keys); o.code != 0 {
		t.Fatalf("keygen: %d %s", o.code, o.stderr)
	}
	if o := h.run("sign", "test/echo", "--key", keys+".key"); o.code != 0 {
		t.Fatalf("sign: %d %s", o.code, o.stderr)
	}
	o := h.run("verify", "test/echo")
	if o.code != 3 || !strings.Contains(o.stderr, "(grant with 'skillbox trust --publisher KEYFILE'") || strings.Contains(o.stderr, "grant with trust the") {
		t.Errorf("verify without trusted keys: %d %q", o.code, o.stderr)
	}
	other := filepath.Join(t.TempDir(), "other")
	h.run("keygen", "--out", other)
	o = h.run("verify", "test/echo", "--pubkey", other+".pub")
	if o.code == 0 || strings.Contains(o.stderr, "grant with is it") {
		t.Errorf("verify with another key: %d %q", o.code, o.stderr)
	}
}

// Flag help is grammatical for run ("the skill") and serve ("skills").
func TestGrantFlagHelp(t *testing.T) {
	h := newHarness(t)
	for _, cmd := range []string{"run", "serve"} {
		o := h.run(cmd, "-h")
		for _, bad := range []string{"the skill request", "skills request "} {
			if strings.Contains(o.stderr, bad) {
				t.Errorf("%s -h says %q:\n%s", cmd, bad, o.stderr)
			}
		}
		if !strings.Contains(o.stderr, "if requested by") {
			t.Errorf("%s -h: %s", cmd, o.stderr)
		}
	}
}

// doctor offers --best-effort for a backend that can run without the
// layers it lacks, and the auto line lists it before the process backend.
func TestDoctorOffersBestEffort(t *testing.T) {
	var b strings.Builder
	printDoctor(&b, doctorEnvelope{
		// sandbox.Choose's error when linux could run degraded.
		AutoErr: "no isolating backend is available on this host (linux: missing cgroup-memory); " +
			"--best-effort runs linux without the missing layers and keeps the others (each missing one is reported on every call); " +
			"as a last resort, --backend process runs without any isolation, for trusted skills only",
		Backends: []doctorBackend{
			{Name: "linux", Summary: "jail", Capabilities: sandbox.Capabilities{Reason: "missing cgroup-memory", BestEffort: true, Isolating: true}},
			{Name: "pyodide", Summary: "wasm", Capabilities: sandbox.Capabilities{Reason: "backend pyodide: missing install"}},
		},
	})
	out := b.String()
	linux, _, _ := strings.Cut(out, "pyodide —")
	if !strings.Contains(linux, "--best-effort runs it without the missing layers") {
		t.Errorf("linux entry does not offer --best-effort:\n%s", out)
	}
	if strings.Count(out, "--best-effort runs it") != 1 {
		t.Errorf("--best-effort offered for a backend that cannot run degraded:\n%s", out)
	}
	if strings.Contains(out, "unavailable: backend pyodide:") {
		t.Errorf("reason names its backend twice:\n%s", out)
	}
	auto := out[strings.Index(out, "auto →"):]
	if be, proc := strings.Index(auto, "--best-effort"), strings.Index(auto, "--backend process"); be < 0 || proc < be {
		t.Errorf("auto line: want --best-effort before --backend process: %q", auto)
	}
}

func TestVersion(t *testing.T) {
	h := newHarness(t)
	a, b := h.run("--version"), h.run("version")
	if a.code != 0 || b.code != 0 || a.stdout != b.stdout || !strings.HasPrefix(a.stdout, "skillbox ") {
		t.Fatalf("--version %d %q, version %d %q", a.code, a.stdout, b.code, b.stdout)
	}
	var v map[string]any
	if o := h.run("version", "--json"); o.code != 0 || json.Unmarshal([]byte(o.stdout), &v) != nil || v["version"] == "" {
		t.Errorf("version --json: %d %q", o.code, o.stdout)
	}
	got := buildVersion(&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "692ccafabc"}, {Key: "vcs.modified", Value: "true"}, {Key: "vcs.time", Value: "2026-12-05T22:00:00Z"},
	}})
	if s := got.String(); s != "skillbox (devel) commit 692ccafabc (modified) go1.26.8" {
		t.Errorf("checkout build: %q", s)
	}
	got = buildVersion(&debug.BuildInfo{Main: debug.Module{Version: "v0.4.0"}})
	if s := got.String(); s != "skillbox v0.4.0" {
		t.Errorf("go install build: %q", s)
	}
}

// Usage errors: a missing argument says what is missing and how to call
// the command; serve --http without a port is invalid (exit 2) before
// anything starts; setup names what is true of each backend.
func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
		not  string
	}{
		{"run without a skill", []string{"run"}, []string{"want one SKILL", "got none", "usage: skillbox run SKILL"}, "argument(s)"},
		{"setup without a backend", []string{"setup"}, []string{"want the backend to set up (pyodide), got none", "usage: skillbox setup pyodide"}, "argument(s)"},
		{"setup docker", []string{"setup", "docker"}, []string{`there is no backend "docker"`, "linux"}, "needs no setup"},
		{"setup linux", []string{"setup", "linux"}, []string{"backend linux has no setup step"}, ""},
		{"serve without a port", []string{"serve", "--http", "localhost"}, []string{`--http "localhost": want HOST:PORT`}, ""},
		{"serve with an empty port", []string{"serve", "--http", "127.0.0.1:"}, []string{"want HOST:PORT"}, ""},
		{"too many", []string{"inspect", "a/b", "c/d"}, []string{"want one SKILL, got 2: a/b c/d"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			o := h.run(tt.args...)
			msg, ok := strings.CutPrefix(strings.TrimSuffix(o.stderr, "\n"), "skillbox: invalid: ")
			if o.code != 2 || !ok {
				t.Fatalf("exit %d, stderr %q", o.code, o.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q lacks %q", msg, w)
				}
			}
			if tt.not != "" && strings.Contains(msg, tt.not) {
				t.Errorf("message %q still says %q", msg, tt.not)
			}
			if strings.HasSuffix(msg, ": ") {
				t.Errorf("message ends in a colon: %q", msg)
			}
		})
	}
}

// trust with a standard input that is not a terminal and gives no answer
// (</dev/null) is an error naming --yes, never "Not trusted." and 0.
func TestTrustWithoutAnswer(t *testing.T) {
	h := newHarness(t)
	h.external()
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	o := h.runWith(null, "trust", "test/echo")
	if o.code != 2 || !strings.Contains(o.stderr, "skillbox: invalid: ") || !strings.Contains(o.stderr, "--yes") || strings.Contains(o.stdout, "Not trusted") {
		t.Errorf("trust </dev/null: exit %d, stdout %q, stderr %q", o.code, o.stdout, o.stderr)
	}
	// On a terminal, input that ends before an answer is no answer either.
	h.terminal = true
	o = h.runWith(strings.NewReader(""), "trust", "test/echo")
	if o.code != 2 || !strings.Contains(o.stderr, "no answer") || strings.Contains(o.stdout, "Not trusted") {
		t.Errorf("trust with input ending: exit %d, stdout %q, stderr %q", o.code, o.stdout, o.stderr)
	}
	if o := h.run("run", "test/echo", "--backend", "process"); o.code != 3 {
		t.Errorf("the skill was trusted: exit %d", o.code)
	}
}

// The audit record says the timeout a call ran under: the default when
// none was set, never "0s".
func TestAuditRecordsTheTimeoutUsed(t *testing.T) {
	h := newHarness(t)
	h.run("run", "test/echo", "--backend", "process")
	h.run("run", "test/echo", "--backend", "process", "--timeout", "7s")
	data, err := os.ReadFile(filepath.Join(h.env["XDG_STATE_HOME"], "skillbox", "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var rec struct {
			Grants struct {
				Timeout string `json:"timeout"`
			} `json:"grants"`
		}
		json.Unmarshal([]byte(line), &rec)
		got = append(got, rec.Grants.Timeout)
	}
	if want := []string{sandbox.DefaultTimeout.String(), "7s"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("audited timeouts %v, want %v", got, want)
	}
}

// A skill outside every root, named by a relative path from a folder where
// its id names nothing: inspect and trust find its environment (they used
// to look it up again by id, "not found"), and the command inspect prints
// works as printed.
func TestEnvironmentOfSkillNamedByRelativePath(t *testing.T) {
	h := newHarness(t)
	cat := filepath.Join(t.TempDir(), "elsewhere")
	dir := filepath.Join(cat, "needs_pkg")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(h.data, "test", "echo"))); err != nil {
		t.Fatal(err)
	}
	manifest := "name: needs_pkg\nversion: \"1.0.0\"\ndescription: Needs a package.\nrequirements:\n  - six==1.16.0\n"
	if err := os.WriteFile(filepath.Join(dir, "manifest.yaml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(cat)

	o := h.run("inspect", "./needs_pkg")
	if o.code != 0 || strings.Contains(o.stdout, "not found") || !strings.Contains(o.stdout, "\nInterpreter:\n") {
		t.Fatalf("inspect: exit %d\n%s%s", o.code, o.stdout, o.stderr)
	}
	if strings.Contains(o.stdout, "skillbox env build") && !strings.Contains(o.stdout, "'skillbox env build ./needs_pkg'") {
		t.Errorf("inspect prints a command that does not work as printed:\n%s", o.stdout)
	}

	o = h.run("trust", "./needs_pkg")
	if o.code != 2 || strings.Contains(o.stderr, "not found") ||
		!strings.Contains(o.stdout, "python packages: six==1.16.0") || !strings.Contains(o.stderr, "cannot ask") {
		t.Errorf("trust: exit %d\n%s%s", o.code, o.stdout, o.stderr)
	}
}

// A failed call shows what the skill printed before it failed, after the
// error line; a dead worker's stderr, which its error quotes as its
// traceback, is shown once.
func TestFailedCallShowsItsOutput(t *testing.T) {
	h := newHarness(t)
	o := h.run("run", "test/exits", "--backend", "process", "--params", `{"say":true}`)
	want := "skillbox: skill: skill failed: WorkerExited: worker exited with code 3\nabout to exit\nfatal: giving up\n"
	if o.code != 1 || !strings.HasPrefix(o.stderr, want) || strings.Count(o.stderr, "fatal: giving up") != 1 {
		t.Errorf("exit %d, stderr:\n%s\nwant it to start:\n%s", o.code, o.stderr, want)
	}
	o = h.run("run", "test/exits", "--backend", "process", "--params", `{"say":true}`, "--json")
	env := o.envelope(t)
	if env["stdout"] != "about to exit\n" || env["stderr"] != "fatal: giving up\n" || env["error"].(map[string]any)["traceback"] != "fatal: giving up\n" {
		t.Errorf("--json: %s", o.stdout)
	}
	if o := h.run("run", "test/exits", "--backend", "process"); strings.Contains(o.stderr, "about to exit") {
		t.Errorf("output of another call shown:\n%s", o.stderr)
	}
}

// TestFailedImportShowsItsOutput checks that what a skill printed while it
// was imported, before it failed to load, is shown with the load error, on
// the default backend as on the process backend.
func TestFailedImportShowsItsOutput(t *testing.T) {
	h := newHarness(t)
	for _, backend := range []string{"auto", "process"} {
		o := h.run("run", "test/fails_import", "--backend", backend)
		// The error line, the traceback, then the skill's stdout and
		// stderr (stdout is the result's alone).
		want, printed := "skillbox: skill: loading skill failed: RuntimeError: no settings\n", "RuntimeError: no settings\nreading settings\nsettings.toml is missing\n"
		if o.code != 1 || !strings.HasPrefix(o.stderr, want) || !strings.Contains(o.stderr, printed) || o.stdout != "" {
			t.Errorf("%s: exit %d, stdout %q, stderr:\n%s\nwant it to start %q and hold %q", backend, o.code, o.stdout, o.stderr, want, printed)
		}
		env := h.run("run", "test/fails_import", "--backend", backend, "--json").envelope(t)
		if env["stdout"] != "reading settings\n" || env["stderr"] != "settings.toml is missing\n" {
			t.Errorf("%s --json: stdout %q stderr %q", backend, env["stdout"], env["stderr"])
		}
	}
}
