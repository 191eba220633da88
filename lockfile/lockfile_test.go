package lockfile

import (
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
