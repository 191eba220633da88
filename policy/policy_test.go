package policy

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/skill"
)

func testSkill(t *testing.T, tier skill.Tier, manifest string) *skill.Skill {
	t.Helper()
	m, err := skill.ParseManifest([]byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	return &skill.Skill{ID: "cat/name", Tier: tier, Dir: "/skills/cat/name", Digest: "sha256:00", Bundle: &skill.Bundle{Manifest: m}}
}

const base = "name: name\nversion: \"1.0\"\ndescription: d\n"

func env(vars map[string]string) LookupEnv {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func TestTrustGate(t *testing.T) {
	s := testSkill(t, skill.TierExternal, base)
	_, err := Decide(s, Grants{}, env(nil))
	var d *errdefs.DeniedError
	if !errors.As(err, &d) || d.Permission != "trust" || !strings.Contains(d.Grant, "--trust-remote-code") || !strings.Contains(d.Grant, "skillbox trust") {
		t.Fatalf("err = %v, want a trust denial naming --trust-remote-code and skillbox trust", err)
	}
	if _, err := Decide(s, Grants{TrustRemoteCode: true}, env(nil)); err != nil {
		t.Fatal(err)
	}
	for _, tier := range []skill.Tier{skill.TierBundled, skill.TierProject} {
		if _, err := Decide(testSkill(t, tier, base), Grants{}, env(nil)); err != nil {
			t.Errorf("%s skill refused: %v", tier, err)
		}
	}
}

func TestEnvIntersection(t *testing.T) {
	m := base + `env_vars:
  REQ: {description: needed, required: true}
  OPT: {description: optional, required: false}
`
	host := env(map[string]string{"REQ": "r", "OPT": "o", "OTHER": "x"})
	tests := []struct {
		name     string
		grant    []string
		lookup   LookupEnv
		want     map[string]string
		warn     string
		errKind  errdefs.Kind
		errMatch string
	}{
		{"nothing granted", nil, host, nil, "env REQ: skill cat/name requires it (env_vars) and it is not granted, so the skill runs without it (grant with --allow-env REQ)", "", ""},
		{"required only", []string{"REQ"}, host, map[string]string{"REQ": "r"}, "", "", ""},
		{"both", []string{"REQ", "OPT"}, host, map[string]string{"REQ": "r", "OPT": "o"}, "", "", ""},
		{"unrequested grant not given", []string{"REQ", "OTHER"}, host, map[string]string{"REQ": "r"}, "--allow-env OTHER: skill cat/name does not request it", "", ""},
		{"granted optional unset", []string{"REQ", "OPT"}, env(map[string]string{"REQ": "r"}), map[string]string{"REQ": "r"}, "", "", ""},
		{"granted required unset", []string{"REQ"}, env(nil), nil, "", errdefs.Invalid, "REQ is granted and required"},
		{"bad name", []string{"REQ", "1X"}, host, nil, "", errdefs.Invalid, `"1X"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Decide(testSkill(t, skill.TierProject, m), Grants{Env: tt.grant}, tt.lookup)
			if tt.errKind != "" {
				if errdefs.KindOf(err) != tt.errKind || !strings.Contains(err.Error(), tt.errMatch) {
					t.Fatalf("err = %v; want kind %s containing %q", err, tt.errKind, tt.errMatch)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			if want == nil {
				want = map[string]string{}
			}
			if diff := cmp.Diff(want, d.Spec.Env); diff != "" {
				t.Errorf("env (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(want, d.Config); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
			if tt.warn != "" && !strings.Contains(strings.Join(d.Warnings, "\n"), tt.warn) {
				t.Errorf("warnings %v lack %q", d.Warnings, tt.warn)
			}
		})
	}
}

func TestPermissionsEnvOverridesEnvVars(t *testing.T) {
	m := base + "env_vars: {A: {required: false}, B: {required: false}}\npermissions: {env: [B]}\n"
	d, err := Decide(testSkill(t, skill.TierProject, m), Grants{Env: []string{"A", "B"}}, env(map[string]string{"A": "a", "B": "b"}))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"B": "b"}, d.Spec.Env); diff != "" {
		t.Errorf("env (-want +got):\n%s", diff)
	}
}

func TestNetwork(t *testing.T) {
	m := base + "permissions:\n  network: [\"api.example.com:443\", \"data.example.org\"]\n"
	tests := []struct {
		name    string
		grant   []string
		want    []sandbox.HostPort
		errKind errdefs.Kind
		errMsg  string
	}{
		{"none granted", nil, nil, errdefs.Denied, "--allow-net api.example.com:443"},
		{"one missing", []string{"api.example.com"}, nil, errdefs.Denied, "--allow-net data.example.org"},
		{"host grant covers any port", []string{"api.example.com", "data.example.org"}, []sandbox.HostPort{{Host: "api.example.com", Port: 443}, {Host: "data.example.org"}}, "", ""},
		{"wrong port", []string{"api.example.com:80", "data.example.org"}, nil, errdefs.Denied, "api.example.com:443"},
		{"wildcard", []string{"*.example.com", "*.example.org"}, []sandbox.HostPort{{Host: "api.example.com", Port: 443}, {Host: "data.example.org"}}, "", ""},
		{"wildcard is not the apex", []string{"*.api.example.com", "data.example.org"}, nil, errdefs.Denied, "api.example.com:443"},
		{"bad grant", []string{"http://x"}, nil, errdefs.Invalid, "--allow-net"},
		{"bad port", []string{"api.example.com:99999"}, nil, errdefs.Invalid, "port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Decide(testSkill(t, skill.TierProject, m), Grants{Net: tt.grant}, env(nil))
			if tt.errKind != "" {
				if errdefs.KindOf(err) != tt.errKind || !strings.Contains(err.Error(), tt.errMsg) {
					t.Fatalf("err = %v; want kind %s containing %q", err, tt.errKind, tt.errMsg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, d.Spec.Network); diff != "" {
				t.Errorf("network (-want +got):\n%s", diff)
			}
			if !contains(d.Spec.Require, sandbox.FeatureNetAllowlist) {
				t.Errorf("a network grant must require net-allowlist enforcement: %v", d.Spec.Require)
			}
		})
	}
}

func TestLimitsAndRequire(t *testing.T) {
	m := base + "permissions: {limits: {timeout: 5s, memory: 64MiB}}\n"
	d, err := Decide(testSkill(t, skill.TierProject, m), Grants{}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if d.Spec.Limits.Timeout != 5*time.Second || d.Spec.Limits.Memory != 64<<20 {
		t.Errorf("manifest limits not applied: %+v", d.Spec.Limits)
	}
	if contains(d.Spec.Require, sandbox.FeatureMemory) {
		t.Error("a manifest memory limit must not be a hard requirement")
	}
	d, err = Decide(testSkill(t, skill.TierProject, m), Grants{Timeout: time.Second, Memory: 32 << 20}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if d.Spec.Limits.Timeout != time.Second || d.Spec.Limits.Memory != 32<<20 || !contains(d.Spec.Require, sandbox.FeatureMemory) {
		t.Errorf("operator limits: %+v require %v", d.Spec.Limits, d.Spec.Require)
	}
	if d.Spec.Mode != sandbox.ModeSingleUse {
		t.Errorf("default mode %q", d.Spec.Mode)
	}
}

// TestMemoryFloor: a memory limit below sandbox.MinMemory is invalid,
// naming where it came from, whether a flag or the manifest asked for it.
func TestMemoryFloor(t *testing.T) {
	for _, tt := range []struct {
		name     string
		manifest string
		g        Grants
		want     string
	}{
		{"flag", base, Grants{Memory: 1024}, "--memory asks for 1KiB of memory, below the floor of 16MiB"},
		{"flag one byte short", base, Grants{Memory: sandbox.MinMemory - 1}, "--memory asks for 16777215B of memory"},
		{"manifest", base + "permissions: {limits: {memory: 4MiB}}\n", Grants{}, "the manifest's permissions.limits.memory asks for 4MiB"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decide(testSkill(t, skill.TierProject, tt.manifest), tt.g, env(nil))
			if errdefs.KindOf(err) != errdefs.Invalid || err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want invalid: %s", err, tt.want)
			}
		})
	}
	if _, err := Decide(testSkill(t, skill.TierProject, base), Grants{Memory: sandbox.MinMemory}, env(nil)); err != nil {
		t.Errorf("the floor itself: %v", err)
	}
}

func TestParseHostPort(t *testing.T) {
	tests := []struct {
		in   string
		want sandbox.HostPort
		err  bool
	}{
		{"Example.COM", sandbox.HostPort{Host: "example.com"}, false},
		{"example.com:8080", sandbox.HostPort{Host: "example.com", Port: 8080}, false},
		{"*.example.com:443", sandbox.HostPort{Host: "*.example.com", Port: 443}, false},
		{"[::1]:80", sandbox.HostPort{Host: "::1", Port: 80}, false},
		{"::1", sandbox.HostPort{Host: "::1"}, false},
		{"127.0.0.1:0", sandbox.HostPort{}, true},
		{"", sandbox.HostPort{}, true},
		{"exa mple.com", sandbox.HostPort{}, true},
		{"a:b:c", sandbox.HostPort{}, true},
		{"-bad.com", sandbox.HostPort{}, true},
		{"*.", sandbox.HostPort{}, true},
		// One syntax with the manifest and the egress proxy (internal/hostport).
		{"[::1]", sandbox.HostPort{Host: "::1"}, false},
		{"[2001:DB8:0::1]:443", sandbox.HostPort{Host: "2001:db8::1", Port: 443}, false},
		{"bücher.example", sandbox.HostPort{Host: "xn--bcher-kva.example"}, false},
		{"example.com.", sandbox.HostPort{Host: "example.com"}, false},
		{"127.1", sandbox.HostPort{}, true},
		{"010.0.0.1", sandbox.HostPort{}, true},
		{"example.com:+80", sandbox.HostPort{}, true},
		{"example.com:", sandbox.HostPort{}, true},
		{"[example.com]:80", sandbox.HostPort{}, true},
		{"[10.0.0.1]:80", sandbox.HostPort{}, true},
		{"a_b.example.com", sandbox.HostPort{}, true},
	}
	for _, tt := range tests {
		got, err := ParseHostPort(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseHostPort(%q) = %v, %v; want %v, err %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func FuzzParseHostPort(f *testing.F) {
	for _, s := range []string{"example.com", "a.b:1", "[::1]:2", "*.x.y", ":", "[", "a:65536"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		hp, err := ParseHostPort(s)
		if err != nil {
			return
		}
		again, err := ParseHostPort(hp.String())
		if err != nil {
			t.Fatalf("%q parsed to %v, whose String %q does not parse: %v", s, hp, hp.String(), err)
		}
		if again != hp {
			t.Fatalf("round trip %q: %v != %v", s, again, hp)
		}
	})
}

func contains(fs []sandbox.Feature, f sandbox.Feature) bool {
	for _, x := range fs {
		if x == f {
			return true
		}
	}
	return false
}

// TestLockedLimits: the limits a lockfile pinned are a locked call's
// defaults: they take the place of limits not given (over the policy's
// standing grant too), a limit given wins, a locked value the call gets
// anyway changes nothing (no memory requirement the backend must meet),
// and a ceiling below the locked value wins without a denial.
func TestLockedLimits(t *testing.T) {
	plain := testSkill(t, skill.TierProject, base)
	for _, tt := range []struct {
		name       string
		g          Grants
		timeout    time.Duration
		memory     int64
		hardMemory bool
	}{
		{"none locked", Grants{}, sandbox.DefaultTimeout, 0, false},
		{"locked", Grants{LockedTimeout: 5 * time.Second, LockedMemory: 128 << 20}, 5 * time.Second, 128 << 20, true},
		{"locked longer than the default", Grants{LockedTimeout: 45 * time.Second}, 45 * time.Second, 0, false},
		{"locked at the defaults", Grants{LockedTimeout: sandbox.DefaultTimeout, LockedMemory: sandbox.DefaultMemory}, sandbox.DefaultTimeout, 0, false},
		{"given wins", Grants{Timeout: 2 * time.Second, Memory: 64 << 20, LockedTimeout: 5 * time.Second, LockedMemory: 128 << 20}, 2 * time.Second, 64 << 20, true},
		{"over the standing grant", Grants{LockedTimeout: 5 * time.Second, Policy: mustPolicy(t, "skills:\n  cat/name:\n    timeout: 10s\n")}, 5 * time.Second, 0, false},
		{"ceiling below", Grants{LockedTimeout: 45 * time.Second, Policy: mustPolicy(t, "ceilings:\n  max_timeout: 20s\n")}, 20 * time.Second, 0, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Decide(plain, tt.g, env(nil))
			if err != nil {
				t.Fatal(err)
			}
			if l := d.Spec.Limits; l.WithDefaults().Timeout != tt.timeout || l.Memory != tt.memory || contains(d.Spec.Require, sandbox.FeatureMemory) != tt.hardMemory {
				t.Errorf("limits %+v require %v; want timeout %v memory %d, memory required %v", l, d.Spec.Require, tt.timeout, tt.memory, tt.hardMemory)
			}
		})
	}
}
