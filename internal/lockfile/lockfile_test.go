package lockfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/errdefs"
)

const dg = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
const dg2 = "sha256:1111111111111111111111111111111111111111111111111111111111111111"

func sample(t *testing.T) *Lock {
	t.Helper()
	l := New(filepath.Join(t.TempDir(), Name))
	l.Set("cat/name", Entry{Version: "1.0", Digest: dg, Tier: "project", Grants: Grants{Env: []string{"B", "A"}, Network: []string{"api.example.com:443"}, Timeout: "30s", Memory: 256 << 20}})
	if err := l.Save(); err != nil {
		t.Fatal(err)
	}
	got, err := Load(l.Path())
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestRoundTripAndCheck(t *testing.T) {
	l := sample(t)
	if e := l.Skills["cat/name"]; strings.Join(e.Grants.Env, ",") != "A,B" || e.Grants.Read == nil {
		t.Errorf("Set must sort and never write null lists: %+v", e.Grants)
	}
	ok := Grants{Env: []string{"A"}, Network: []string{"api.example.com:443"}, Timeout: "10s", Memory: 64 << 20}
	tests := []struct {
		name               string
		id, ver, dig, tier string
		g                  Grants
		want               string
	}{
		{"matches", "cat/name", "1.0", dg, "project", ok, ""},
		{"narrower is fine", "cat/name", "1.0", dg, "project", Grants{}, ""},
		{"missing", "cat/other", "1.0", dg, "project", ok, "not in the lockfile"},
		{"digest", "cat/name", "1.0", dg2, "project", ok, "lockfile digest"},
		{"version", "cat/name", "1.1", dg, "project", ok, `version is "1.1", locked "1.0"`},
		{"tier", "cat/name", "1.0", dg, "external", ok, "shadowing"},
		{"wider env", "cat/name", "1.0", dg, "project", Grants{Env: []string{"A", "C"}}, "env grant C is wider"},
		{"wider net", "cat/name", "1.0", dg, "project", Grants{Network: []string{"evil.com"}}, "network grant evil.com"},
		{"wider read", "cat/name", "1.0", dg, "project", Grants{Read: []string{"/etc"}}, "read grant /etc"},
		{"new egress mapping", "cat/name", "1.0", dg, "project", Grants{Resolve: []string{"api.example.com=127.0.0.1"}}, "resolve grant api.example.com=127.0.0.1 is wider"},
		{"new bound secret", "cat/name", "1.0", dg, "project", Grants{Secrets: []string{"TOKEN"}}, "secrets grant TOKEN is wider"},
		{"longer timeout", "cat/name", "1.0", dg, "project", Grants{Timeout: "1m"}, "timeout 1m0s is longer"},
		{"more memory", "cat/name", "1.0", dg, "project", Grants{Memory: 1 << 30}, "memory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := l.Check(tt.id, tt.ver, tt.dig, tt.tier, tt.g)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if errdefs.KindOf(err) != errdefs.Denied || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "skillbox lock") {
				t.Errorf("err = %v; want denied containing %q", err, tt.want)
			}
		})
	}
}

func TestMalformed(t *testing.T) {
	good := `{"version": 1, "skills": {"a/b": {"version": "1", "digest": "` + dg + `", "tier": "project", "grants": {"env": [], "network": [], "read": [], "timeout": "30s", "memory": 1}}}}`
	tests := []struct{ name, data, want string }{
		{"syntax", "{\n\"version\": 1,,", "line 2"},
		{"truncated", `{"version": 1`, "truncated"},
		{"empty", "", "empty file"},
		{"unknown field", strings.Replace(good, `"tier"`, `"trust": true, "tier"`, 1), "unknown field"},
		{"version", strings.Replace(good, `"version": 1,`, `"version": 2,`, 1), "unknown version 2"},
		{"no skills", `{"version": 1}`, `"skills" is missing`},
		{"bad id", strings.Replace(good, `"a/b"`, `"ab"`, 1), "not a skill id"},
		{"bad digest", strings.Replace(good, dg, "sha256:xyz", 1), "not sha256"},
		{"bad tier", strings.Replace(good, `"project"`, `"trusted"`, 1), "unknown tier"},
		{"bad timeout", strings.Replace(good, `"30s"`, `"soon"`, 1), "grants.timeout"},
		{"trailing", good + "{}", "trailing data"},
		{"wrong type", strings.Replace(good, `"memory": 1`, `"memory": "1"`, 1), "memory must be int64"},
		// Read strictly: a skill listed twice, a field given twice or a
		// field name in another case is refused, not last-wins or folded.
		{"skill twice", strings.Replace(good, `"memory": 1}}}}`, "\"memory\": 1}},\n\"a/b\": {}}}", 1), `line 2: skills: duplicate key "a/b"`},
		{"field twice", strings.Replace(good, `"tier": "project",`, "\"tier\": \"project\",\n\"tier\": \"external\",", 1), `line 2: skills["a/b"]: duplicate key "tier"`},
		{"field in upper case", strings.Replace(good, `"grants"`, "\n\"Grants\"", 1), `line 2: skills["a/b"]: unknown field "Grants"`},
		{"version in upper case", strings.Replace(good, `"version": 1,`, `"VERSION": 1,`, 1), `unknown field "VERSION"`},
	}
	if _, err := Parse([]byte(good)); err != nil {
		t.Fatalf("good lockfile: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), Name)
			os.WriteFile(p, []byte(tt.data), 0o644)
			_, err := Load(p)
			if errdefs.KindOf(err) != errdefs.Invalid || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v; want invalid containing %q", err, tt.want)
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "none")); errdefs.KindOf(err) != errdefs.NotFound || !strings.Contains(err.Error(), "skillbox lock") {
		t.Errorf("missing lockfile: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"version":1,"skills":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := Parse(data)
		if err == nil && l.Skills == nil {
			t.Fatal("accepted a lock without skills")
		}
	})
}

// The command a drift denial suggests works as printed: it names the skill
// as the operator did (Refer), quoted for a shell, writes this lockfile,
// and locks the grants and limits of the call that drifted — never a bare
// 'skillbox lock ID' that would re-lock a 5s timeout at the default 30s.
func TestDriftHintCommands(t *testing.T) {
	l := New(filepath.Join(t.TempDir(), "my locks", Name))
	l.Set("cat/name", Entry{Version: "1.0", Digest: dg, Tier: "external", Grants: Grants{Env: []string{"A"}, Timeout: "5s", Memory: 128 << 20}})
	grant := func(err error) string {
		t.Helper()
		var d *errdefs.DeniedError
		if !errors.As(err, &d) {
			t.Fatalf("err = %v; want a denial", err)
		}
		return d.Grant
	}
	locked := Grants{Env: []string{"A"}, Timeout: "5s", Memory: 128 << 20}
	lockfileFlag := `--lockfile "` + l.Path() + `"`

	// By id: the id, and this lockfile.
	if got, want := grant(l.Check("cat/name", "1.0", dg2, "external", locked)), "'skillbox lock cat/name "+lockfileFlag+" --allow-env A --timeout 5s --memory 128MiB' after reviewing the change (or run without --locked)"; got != want {
		t.Errorf("digest drift by id:\n got %s\nwant %s", got, want)
	}
	// By path: the path as given, quoted.
	l.Refer("cat/name", "./my skills/cat/name")
	if got, want := grant(l.Check("cat/name", "1.0", dg2, "external", locked)), `'skillbox lock "./my skills/cat/name" `+lockfileFlag+" --allow-env A --timeout 5s --memory 128MiB'"; !strings.HasPrefix(got, want) {
		t.Errorf("digest drift by path:\n got %s\nwant %s...", got, want)
	}
	// A longer timeout than locked: re-lock with it, or ask for less.
	got := grant(l.Check("cat/name", "1.0", dg, "external", Grants{Timeout: "1m0s", Memory: 128 << 20}))
	if !strings.Contains(got, "--timeout 1m0s --memory 128MiB'") || !strings.Contains(got, "or --timeout 5s or less") {
		t.Errorf("timeout drift: %s", got)
	}
	got = grant(l.Check("cat/name", "1.0", dg, "external", Grants{Timeout: "5s", Memory: 1 << 30}))
	if !strings.Contains(got, "--memory 1GiB'") || !strings.Contains(got, "or --memory 128MiB or less") {
		t.Errorf("memory drift: %s", got)
	}
	// Default limits are left out; a mapping lock cannot take is explained.
	got = grant(l.Check("cat/name", "1.0", dg, "external", Grants{Resolve: []string{"a.test=127.0.0.1"}, Timeout: "30s", Memory: 256 << 20}))
	if !strings.Contains(got, "egress_resolve: [a.test=127.0.0.1] in the policy file, then 'skillbox lock \"./my skills/cat/name\" "+lockfileFlag+"'") {
		t.Errorf("resolve drift: %s", got)
	}
	// A missing lockfile other than ./skills.lock is created where it was looked for.
	other := filepath.Join(t.TempDir(), "ci.lock")
	if _, err := Load(other); err == nil || !strings.Contains(err.Error(), "create one with 'skillbox lock --lockfile "+other+"'") {
		t.Errorf("missing lockfile: %v", err)
	}
}

func TestRepin(t *testing.T) {
	l := sample(t)
	if l.Repin("cat/name", dg2, dg) || l.Repin("cat/other", dg, dg2) || l.Repin("cat/name", dg, "sha256:nope") {
		t.Error("Repin moved a pin it should not have")
	}
	if !l.Repin("cat/name", dg, dg2) || l.Skills["cat/name"].Digest != dg2 {
		t.Errorf("Repin: %+v", l.Skills["cat/name"])
	}
}
