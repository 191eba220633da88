package policy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/skill"
)

const fullPolicy = `version: 1
ceilings:
  max_memory: 512MiB
  max_timeout: 1m
  backends: [linux, process]
  allow_process: false
skills:
  cat/name:
    env: [REQ]
    net: ["api.example.com:443"]
    read: [/tmp]
    timeout: 10s
    memory: 128MiB
secrets:
  REQ: {hosts: [api.example.com]}
`

func TestParsePolicy(t *testing.T) {
	p, err := Parse("p.yaml", []byte(fullPolicy))
	if err != nil {
		t.Fatal(err)
	}
	want := &Policy{
		Path: "p.yaml",
		Ceilings: Ceilings{MaxMemory: 512 << 20, MaxTimeout: time.Minute, Backends: []string{"linux", "process"}, ForbidProcess: true,
			MaxMemoryLine: 3, MaxTimeoutLine: 4, BackendsLine: 5, AllowProcessLine: 6},
		Skills:  map[string]SkillGrants{"cat/name": {Env: []string{"REQ"}, Net: []string{"api.example.com:443"}, Read: []string{"/tmp"}, Timeout: 10 * time.Second, Memory: 128 << 20, Line: 8}},
		Secrets: map[string]SecretBinding{"REQ": {Hosts: []string{"api.example.com"}, Line: 15}},
	}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("policy (-want +got):\n%s", diff)
	}
	for _, empty := range []string{"", "  \n", "# only a comment\n", "~\n"} {
		p, err := Parse("e.yaml", []byte(empty))
		if err != nil || len(p.Skills) != 0 || p.Ceilings.ForbidProcess {
			t.Errorf("Parse(%q) = %+v, %v; want the empty policy", empty, p, err)
		}
	}
}

func TestParsePolicyErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"unknown top-level key", "version: 1\nceiling:\n  max_memory: 1GiB\n", `p.yaml:2: unknown field "ceiling"`},
		{"unknown ceiling", "ceilings:\n  max_mem: 1GiB\n", `p.yaml:2: ceilings: unknown field "max_mem"`},
		{"unknown skill field", "skills:\n  a/b:\n    allow_env: [X]\n", `p.yaml:3: skills["a/b"]: unknown field "allow_env"`},
		{"bad skill id", "skills:\n  nope:\n    env: [X]\n", `p.yaml:2: skills: "nope" is not a skill id`},
		{"env as a string", "skills:\n  a/b:\n    env: X\n", "must be a list"},
		{"bad env name", "skills:\n  a/b:\n    env: [1X]\n", `"1X" is not a valid variable name`},
		{"bad host", "skills:\n  a/b:\n    net: [\"http://x\"]\n", `p.yaml:3`},
		{"relative read", "skills:\n  a/b:\n    read: [data]\n", "must be an absolute host path"},
		{"bad size", "ceilings:\n  max_memory: lots\n", `p.yaml:2: ceilings.max_memory: "lots" is not a positive size`},
		{"ceiling below the memory floor", "ceilings:\n  max_memory: 1k\n", `p.yaml:2: ceilings.max_memory: 1KiB is below the floor of 16MiB`},
		{"grant below the memory floor", "skills:\n  a/b:\n    memory: 8MiB\n", `p.yaml:3: skills["a/b"].memory: 8MiB is below the floor of 16MiB`},
		{"bad duration", "ceilings:\n  max_timeout: forever\n", "ceilings.max_timeout"},
		{"allow_process not bool", "ceilings:\n  allow_process: \"no\"\n", "must be true or false"},
		{"auto in backends", "ceilings:\n  backends: [auto]\n", "not auto"},
		{"empty backends", "ceilings:\n  backends: []\n", "forbid every backend"},
		{"duplicate key", "skills:\n  a/b: {env: [X]}\n  a/b: {env: [Y]}\n", "p.yaml:3: skills.a/b: duplicate key (first at line 2)"},
		{"alias", "x: &a {env: [X]}\nskills:\n  a/b: *a\n", "anchors and aliases"},
		{"wrong version", "version: 2\n", "unknown policy version 2"},
		{"syntax", "skills: [\n", "YAML syntax error"},
		{"top level list", "- a\n", "top level must be a mapping"},
		{"secret without hosts", "secrets:\n  TOKEN: {}\n", "hosts is required"},
		{"secret unknown field", "secrets:\n  TOKEN: {hosts: [a.com], host: b}\n", `unknown field "host"`},
		{"two documents", "version: 1\n---\nversion: 1\n", "more than one YAML document"},
		{"warm not bool", "skills:\n  a/b:\n    warm: \"yes\"\n", `p.yaml:3: skills["a/b"].warm: must be true or false`},
		{"warm at top level", "warm: true\n", `p.yaml:1: unknown field "warm"`},
		{"trusted env as a string", "trusted_environments: python:/usr/bin/python3\n", "p.yaml:1: trusted_environments: must be a list"},
		{"trusted env relative", "version: 1\ntrusted_environments:\n  - python:usr/bin/python3\n", `p.yaml:3: trusted_environments[0]: "python:usr/bin/python3": an environment key is python: and the absolute`},
		{"trusted env unclean", "trusted_environments: [\"python:/usr/bin/../bin/python3\"]\n", `p.yaml:1: trusted_environments[0]`},
		{"trusted env unknown scheme", "trusted_environments:\n  - venv:/srv/venv\n", `p.yaml:2: trusted_environments[0]: "venv:/srv/venv": want an environment key`},
		{"trusted env bare path", "trusted_environments: [/usr/bin/python3]\n", "want an environment key"},
		{"trusted env short digest", "trusted_environments: [\"sha256:abc\"]\n", "64 lower-case hex digits"},
		{"trusted env upper-case digest", "trusted_environments: [\"sha256:" + strings.Repeat("AB", 32) + "\"]\n", "64 lower-case hex digits"},
		{"trusted env twice", "trusted_environments:\n  - python:/usr/bin/python3\n  - python:/usr/bin/python3\n", `p.yaml:3: trusted_environments[1]: "python:/usr/bin/python3" is listed twice`},
		{"trusted env empty", "trusted_environments: [\"\"]\n", "must not be empty"},
		{"missing_env unknown value", "missing_env: deny\n", `p.yaml:1: missing_env: "deny": want warn`},
		{"missing_env not a string", "missing_env: [refuse]\n", "p.yaml:1: missing_env: must be a string"},
		{"skill missing_env unknown value", "skills:\n  a/b:\n    missing_env: no\n", `p.yaml:3: skills["a/b"].missing_env`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("p.yaml", []byte(tt.in))
			if errdefs.KindOf(err) != errdefs.Invalid || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v; want invalid containing %q", err, tt.want)
			}
		})
	}
}

// warm (per skill) and trusted_environments (top level) parse into the
// policy; both are absent unless written.
func TestParseWarmAndTrustedEnvironments(t *testing.T) {
	digest := "sha256:" + strings.Repeat("0f", 32)
	p, err := Parse("p.yaml", []byte("skills:\n  a/b:\n    warm: true\n  a/c:\n    warm: false\ntrusted_environments:\n  - python:/usr/bin/python3.12\n  - "+digest+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !p.Skills["a/b"].Warm || p.Skills["a/c"].Warm {
		t.Errorf("warm: %+v", p.Skills)
	}
	if diff := cmp.Diff([]string{"python:/usr/bin/python3.12", digest}, p.TrustedEnvironments); diff != "" || p.TrustedEnvironmentsLine != 6 {
		t.Errorf("trusted_environments (line %d) (-want +got):\n%s", p.TrustedEnvironmentsLine, diff)
	}
	p, err = Parse("p.yaml", []byte(fullPolicy))
	if err != nil || p.Skills["cat/name"].Warm || p.TrustedEnvironments != nil {
		t.Errorf("defaults: warm %v, trusted_environments %v (%v)", p.Skills["cat/name"].Warm, p.TrustedEnvironments, err)
	}
}

func TestLoadPolicy(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "none.yaml")
	if p, err := Load(missing, true); err != nil || p == nil {
		t.Errorf("optional missing file: %v, %v", p, err)
	}
	if _, err := Load(missing, false); errdefs.KindOf(err) != errdefs.Invalid {
		t.Errorf("named missing file: err = %v, want invalid", err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("skills:\n  a/b:\n    evn: [X]\n"), 0o600)
	if _, err := Load(bad, true); err == nil || !strings.Contains(err.Error(), bad+":3") {
		t.Errorf("malformed default policy must fail closed with file:line, got %v", err)
	}
	if got := DefaultPath(func(k string) string { return map[string]string{"XDG_CONFIG_HOME": "/cfg", "HOME": "/h"}[k] }); got != "/cfg/skillbox/policy.yaml" {
		t.Errorf("DefaultPath = %s", got)
	}
	if got := DefaultPath(func(k string) string { return map[string]string{"XDG_CONFIG_HOME": "rel", "HOME": "/h"}[k] }); got != "/h/.config/skillbox/policy.yaml" {
		t.Errorf("DefaultPath with a relative XDG_CONFIG_HOME = %s", got)
	}
}

func mustPolicy(t *testing.T, src string) *Policy {
	t.Helper()
	p, err := Parse("/etc/p.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestStandingGrants(t *testing.T) {
	m := base + "env_vars: {REQ: {required: true}}\npermissions: {network: [\"api.example.com:443\"]}\n"
	s := testSkill(t, skill.TierProject, m)
	pol := mustPolicy(t, "skills:\n  cat/name:\n    env: [REQ]\n    net: [api.example.com]\n    timeout: 7s\n")
	d, err := Decide(s, Grants{Policy: pol}, env(map[string]string{"REQ": "r"}))
	if err != nil {
		t.Fatal(err)
	}
	if d.Spec.Env["REQ"] != "r" || len(d.Spec.Network) != 1 || d.Spec.Limits.Timeout != 7*time.Second {
		t.Errorf("standing grants not applied: %+v", d.Spec)
	}
	// Another skill's standing grant does not apply (and missing_env:
	// refuse makes the missing required variable a denial).
	other := mustPolicy(t, "missing_env: refuse\nskills:\n  cat/other:\n    env: [REQ]\n")
	_, err = Decide(s, Grants{Policy: other}, env(map[string]string{"REQ": "r"}))
	if errdefs.KindOf(err) != errdefs.Denied || !strings.Contains(err.Error(), `env: [REQ] under skills["cat/name"] in /etc/p.yaml`) {
		t.Errorf("denial should name the flag and the policy entry: %v", err)
	}
	// A flag wins over the standing timeout.
	d, err = Decide(s, Grants{Policy: pol, Timeout: 3 * time.Second}, env(map[string]string{"REQ": "r"}))
	if err != nil || d.Spec.Limits.Timeout != 3*time.Second {
		t.Errorf("flag timeout: %v %v", d, err)
	}
}

// Spec.Warm is set only by an opt-in for this skill (the grant or its
// policy entry), only for single-use calls; Spec.TrustedEnvironments is the
// policy's list for every skill.
func TestWarmAndTrustedEnvironmentsInSpec(t *testing.T) {
	s := testSkill(t, skill.TierProject, base)
	none := func(string) (string, bool) { return "", false }
	d, err := Decide(s, Grants{}, none)
	if err != nil || d.Spec.Warm || d.Spec.TrustedEnvironments != nil {
		t.Fatalf("default: warm %v, trusted %v, %v", d.Spec.Warm, d.Spec.TrustedEnvironments, err)
	}
	if d, _ := Decide(s, Grants{Warm: true}, none); !d.Spec.Warm {
		t.Error("Grants.Warm did not set Spec.Warm")
	}
	pol := mustPolicy(t, "skills:\n  cat/name: {warm: true}\n  cat/other: {warm: true}\ntrusted_environments: [python:/opt/py/bin/python3]\n")
	d, err = Decide(s, Grants{Policy: pol}, none)
	if err != nil || !d.Spec.Warm || strings.Join(d.Spec.TrustedEnvironments, ",") != "python:/opt/py/bin/python3" {
		t.Errorf("policy: warm %v, trusted %v, %v", d.Spec.Warm, d.Spec.TrustedEnvironments, err)
	}
	if d, _ := Decide(s, Grants{Policy: mustPolicy(t, "skills:\n  cat/other: {warm: true}\n")}, none); d.Spec.Warm {
		t.Error("another skill's warm: true made this one warm")
	}
	if d, _ := Decide(s, Grants{Policy: pol, Mode: sandbox.ModeSession}, none); d.Spec.Warm {
		t.Error("a session Spec is warm")
	}
}

func TestCeilings(t *testing.T) {
	pol := mustPolicy(t, "ceilings:\n  max_memory: 128MiB\n  max_timeout: 10s\n")
	plain := testSkill(t, skill.TierProject, base)
	tests := []struct {
		name string
		g    Grants
		want string // substring of a denial; "" for success
	}{
		{"flag memory over ceiling", Grants{Memory: 256 << 20}, "memory 256MiB: --memory exceeds the policy ceiling max_memory 128MiB (/etc/p.yaml:2)"},
		{"flag timeout over ceiling", Grants{Timeout: time.Minute}, "--timeout exceeds the policy ceiling max_timeout 10s (/etc/p.yaml:3)"},
		{"within ceilings", Grants{Memory: 64 << 20, Timeout: 5 * time.Second}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.g.Policy = pol
			d, err := Decide(plain, tt.g, env(nil))
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var de *errdefs.DeniedError
			if !errors.As(err, &de) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(de.Grant, "/etc/p.yaml") {
				t.Errorf("err = %v (decision %v); want a denial containing %q", err, d, tt.want)
			}
		})
	}
	// Unset limits get the smaller of default and ceiling, and the memory
	// ceiling must be enforced.
	d, err := Decide(plain, Grants{Policy: pol}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if d.Spec.Limits.Memory != 128<<20 || d.Spec.Limits.Timeout != 10*time.Second || !contains(d.Spec.Require, sandbox.FeatureMemory) {
		t.Errorf("ceiling defaults: %+v require %v", d.Spec.Limits, d.Spec.Require)
	}
	// A manifest asking for more is lowered with a warning, not denied.
	big := testSkill(t, skill.TierProject, base+"permissions: {limits: {timeout: 5m, memory: 1GiB}}\n")
	d, err = Decide(big, Grants{Policy: pol}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if d.Spec.Limits.Memory != 128<<20 || d.Spec.Limits.Timeout != 10*time.Second || !strings.Contains(strings.Join(d.Warnings, "\n"), "lowered to the policy ceiling") {
		t.Errorf("manifest over ceiling: %+v %v", d.Spec.Limits, d.Warnings)
	}
	// Standing grants above the ceiling are denied and name the policy entry.
	over := mustPolicy(t, "ceilings:\n  max_memory: 128MiB\nskills:\n  cat/name:\n    memory: 1GiB\n")
	_, err = Decide(plain, Grants{Policy: over}, env(nil))
	if errdefs.KindOf(err) != errdefs.Denied || !strings.Contains(err.Error(), `skills["cat/name"].memory at /etc/p.yaml:4`) {
		t.Errorf("standing memory over ceiling: %v", err)
	}
}

func TestCheckBackend(t *testing.T) {
	var none *Policy
	if err := none.CheckBackend("process"); err != nil {
		t.Errorf("no policy: %v", err)
	}
	pol := mustPolicy(t, "ceilings:\n  backends: [linux]\n  allow_process: false\n")
	for name, want := range map[string]string{
		"process": "allow_process: false at /etc/p.yaml:3",
		"pyodide": "allows only linux (ceilings.backends at /etc/p.yaml:2)",
		"linux":   "",
		"auto":    "",
	} {
		err := pol.CheckBackend(name)
		if want == "" {
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
			continue
		}
		if errdefs.KindOf(err) != errdefs.Denied || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v; want denied containing %q", name, err, want)
		}
	}
	if err := mustPolicy(t, "ceilings:\n  allow_process: true\n").CheckBackend("process"); err != nil {
		t.Errorf("allow_process: true: %v", err)
	}
}

func TestReadGrants(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(t.TempDir(), "link")
	os.Symlink(dir, link)
	s := testSkill(t, skill.TierProject, base)
	d, err := Decide(s, Grants{Read: []string{link, dir}}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	real, _ := filepath.EvalSymlinks(dir)
	if diff := cmp.Diff([]string{real}, d.Spec.ReadPaths); diff != "" {
		t.Errorf("read paths resolved and deduplicated (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"relative", filepath.Join(dir, "missing"), "/"} {
		if _, err := Decide(s, Grants{Read: []string{bad}}, env(nil)); errdefs.KindOf(err) != errdefs.Invalid {
			t.Errorf("--allow-read %s: err = %v, want invalid", bad, err)
		}
	}
}

type fakeTrust struct {
	how string
	err error
}

func (f fakeTrust) Trusted(*skill.Skill) (string, error) { return f.how, f.err }

func TestTrustInterface(t *testing.T) {
	s := testSkill(t, skill.TierExternal, base)
	d, err := Decide(s, Grants{Trust: fakeTrust{how: "pinned"}}, env(nil))
	if err != nil || d.TrustedBy != "pinned" {
		t.Fatalf("trusted: %v %v", d, err)
	}
	if _, err := Decide(s, Grants{Trust: fakeTrust{err: ErrNotTrusted}}, env(nil)); errdefs.KindOf(err) != errdefs.Denied || !strings.Contains(err.Error(), "--trust-remote-code") {
		t.Errorf("not trusted: %v", err)
	}
	broken := errdefs.New(errdefs.Invalid, "trust store is broken")
	if _, err := Decide(s, Grants{Trust: fakeTrust{err: broken}}, env(nil)); !errors.Is(err, broken) {
		t.Errorf("a broken store must refuse with its own error, got %v", err)
	}
	if d, err := Decide(s, Grants{TrustRemoteCode: true, Trust: fakeTrust{err: broken}}, env(nil)); err != nil || d.TrustedBy != "--trust-remote-code" {
		t.Errorf("--trust-remote-code: %v %v", d, err)
	}
	// Bundled and project skills never consult the trust store.
	if _, err := Decide(testSkill(t, skill.TierProject, base), Grants{Trust: fakeTrust{err: broken}}, env(nil)); err != nil {
		t.Errorf("project skill: %v", err)
	}
}

func FuzzParsePolicy(f *testing.F) {
	f.Add([]byte(fullPolicy))
	f.Add([]byte("skills: {a/b: {env: [X]}}"))
	f.Add([]byte("x: &a [1]\ny: *a"))
	f.Add([]byte("backends:\n  linux: {pool_size: 4, exec: cold, prefork: false, r: 1.5}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("f.yaml", data)
		if err != nil {
			if errdefs.KindOf(err) != errdefs.Invalid {
				t.Fatalf("error of kind %s: %v", errdefs.KindOf(err), err)
			}
			return
		}
		for id := range p.Skills {
			if !skill.ValidID(id) {
				t.Fatalf("accepted bad id %q", id)
			}
		}
		for name, cfg := range p.Backends {
			if name == sandbox.Auto || cfg.Backend != name {
				t.Fatalf("accepted backend section %q as %q", name, cfg.Backend)
			}
			for _, s := range cfg.Settings {
				if s.Line <= 0 || (s.Kind != "int" && s.Kind != "bool" && s.Kind != "str" && s.Kind != "float") {
					t.Fatalf("accepted setting %+v", s)
				}
			}
		}
	})
}

// The backends section keeps each backend's settings as written, with their
// lines, for the backend to decode (sandbox.Config); only the shape is
// checked here.
func TestParseBackends(t *testing.T) {
	in := "version: 1\nbackends:\n  linux: {pool_size: 4, idle_timeout: 5m}\n  pyodide:\n    install: false\n    ratio: 1.5\n  process:\n"
	p, err := Parse("p.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]sandbox.Config{
		"linux": {Backend: "linux", File: "p.yaml", Line: 3, Settings: []sandbox.Setting{
			{Key: "pool_size", Value: "4", Kind: "int", Line: 3}, {Key: "idle_timeout", Value: "5m", Kind: "str", Line: 3}}},
		"pyodide": {Backend: "pyodide", File: "p.yaml", Line: 4, Settings: []sandbox.Setting{
			{Key: "install", Value: "false", Kind: "bool", Line: 5}, {Key: "ratio", Value: "1.5", Kind: "float", Line: 6}}},
		"process": {Backend: "process", File: "p.yaml", Line: 7},
	}
	if diff := cmp.Diff(want, p.Backends); diff != "" {
		t.Errorf("backends (-want +got):\n%s", diff)
	}
	if p, err := Parse("p.yaml", []byte("version: 1\n")); err != nil || p.Backends != nil {
		t.Errorf("no section: %v, %v; want nil Backends", p.Backends, err)
	}
}

func TestParseBackendsErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"not a mapping", "backends: [linux]\n", "p.yaml:1: backends must be a mapping, got a list"},
		{"auto", "backends:\n  auto: {pool_size: 1}\n", `p.yaml:2: backends: "auto" is not a backend`},
		{"section a list", "backends:\n  linux: [pool_size]\n", "p.yaml:2: backends.linux must be a mapping, got a list"},
		{"list value", "backends:\n  linux:\n    exec: [cold]\n", "p.yaml:3: backends.linux.exec: must be a single value, got a list"},
		{"mapping value", "backends:\n  linux:\n    pool: {size: 1}\n", "p.yaml:3: backends.linux.pool: must be a single value, got a mapping"},
		{"null value", "backends:\n  linux:\n    pool_size:\n", "p.yaml:3: backends.linux.pool_size: needs a value"},
		{"duplicate setting", "backends:\n  linux:\n    exec: cold\n    exec: zygote\n", "p.yaml:4: backends.linux.exec: duplicate key (first at line 3)"},
		{"duplicate backend", "backends:\n  linux: {}\n  linux: {}\n", "p.yaml:3: backends.linux: duplicate key (first at line 2)"},
		{"alias", "x: &a {pool_size: 1}\nbackends:\n  linux: *a\n", "anchors and aliases"},
		{"odd tag", "backends:\n  linux:\n    pool_size: !!binary aGk=\n", "p.yaml:3: backends.linux.pool_size: must be a number, true/false or a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("p.yaml", []byte(tt.in))
			if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse: %v; want invalid containing %q", err, tt.want)
			}
		})
	}
}
