package policy

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/skill"
)

// noBlock is an unmodified Skillware manifest: env_vars, no permissions.
const noBlock = base + "env_vars:\n  LISTED: {description: optional, required: false}\n"

// A manifest without a permissions block gets the call's grants as they
// are when they are meant for it alone (GrantUndeclared, skillbox run),
// and only its policy entry's otherwise (serve); a manifest with a block
// (even an empty one) gets requested ∩ granted either way.
func TestGrantUndeclared(t *testing.T) {
	read := t.TempDir()
	host := env(map[string]string{"LISTED": "l", "OTHER": "o", "POLICY_VAR": "p"})
	pol := mustPolicy(t, "skills:\n  cat/name:\n    env: [POLICY_VAR]\n    net: [\"policy.test:8443\"]\n")
	flags := Grants{Net: []string{"api.test:443", "*.example.org"}, Env: []string{"LISTED", "OTHER"}, Read: []string{read}}
	tests := []struct {
		name     string
		manifest string
		undecl   bool
		policy   *Policy
		net      []sandbox.HostPort
		env      map[string]string
		operator bool
		warn     []string
	}{
		{"run, no block", noBlock, true, nil,
			[]sandbox.HostPort{{Host: "api.test", Port: 443}, {Host: "*.example.org"}},
			map[string]string{"LISTED": "l", "OTHER": "o"}, true, nil},
		{"run, no block, policy entry too", noBlock, true, pol,
			[]sandbox.HostPort{{Host: "api.test", Port: 443}, {Host: "*.example.org"}, {Host: "policy.test", Port: 8443}},
			map[string]string{"LISTED": "l", "OTHER": "o", "POLICY_VAR": "p"}, true, nil},
		{"serve, no block: flags give only env_vars", noBlock, false, nil,
			nil, map[string]string{"LISTED": "l"}, false,
			[]string{
				`--allow-net api.test:443: skill cat/name does not request it, so it is not given (its manifest has no permissions block: grant it to this skill alone with net: [api.test:443] under skills["cat/name"] in the policy file`,
				`--allow-env OTHER: skill cat/name does not request it, so it is not given (its manifest has no permissions block: grant it to this skill alone with env: [OTHER] under skills["cat/name"] in the policy file`,
			}},
		{"serve, no block: the policy entry gives", noBlock, false, pol,
			[]sandbox.HostPort{{Host: "policy.test", Port: 8443}},
			map[string]string{"LISTED": "l", "POLICY_VAR": "p"}, true,
			[]string{`--allow-net api.test:443: skill cat/name does not request it, so it is not given (its manifest has no permissions block: grant it to this skill alone with net: [api.test:443] under skills["cat/name"] in /etc/p.yaml)`}},
		{"run, block: requested ∩ granted", base + "env_vars: {LISTED: {required: false}}\npermissions: {network: [\"api.test:443\"]}\n", true, pol,
			[]sandbox.HostPort{{Host: "api.test", Port: 443}}, map[string]string{"LISTED": "l"}, false,
			[]string{"--allow-net *.example.org: skill cat/name does not request it, so it is not given",
				"--allow-env OTHER: skill cat/name does not request it, so it is not given"}},
		{"run, empty block", noBlock + "permissions: {}\n", true, nil,
			nil, map[string]string{"LISTED": "l"}, false,
			[]string{"--allow-net api.test:443: skill cat/name does not request it, so it is not given"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := flags
			g.GrantUndeclared, g.Policy = tt.undecl, tt.policy
			d, err := Decide(testSkill(t, skill.TierProject, tt.manifest), g, host)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.net, d.Spec.Network); diff != "" {
				t.Errorf("network (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.env, d.Spec.Env); diff != "" {
				t.Errorf("env (-want +got):\n%s", diff)
			}
			if d.OperatorOnly != tt.operator {
				t.Errorf("OperatorOnly = %v, want %v", d.OperatorOnly, tt.operator)
			}
			// Host paths are the operator's in every case.
			if len(d.ReadPaths) != 1 || !slices.Equal(d.ReadPaths, d.Spec.ReadPaths) {
				t.Errorf("read paths %v / %v", d.ReadPaths, d.Spec.ReadPaths)
			}
			if len(tt.net) > 0 && !slices.Contains(d.Spec.Require, sandbox.FeatureNetAllowlist) {
				t.Errorf("a network grant does not require %s: %v", sandbox.FeatureNetAllowlist, d.Spec.Require)
			}
			all := strings.Join(d.Warnings, "\n")
			for _, w := range tt.warn {
				if !strings.Contains(all, w) {
					t.Errorf("warnings lack %q:\n%s", w, all)
				}
			}
			if tt.warn == nil && all != "" {
				t.Errorf("unexpected warnings:\n%s", all)
			}
		})
	}
}

// A grant the egress proxy could not enforce is refused even for a skill
// without a block.
func TestGrantUndeclaredBadHost(t *testing.T) {
	_, err := Decide(testSkill(t, skill.TierProject, noBlock), Grants{Net: []string{"http://x"}, GrantUndeclared: true}, env(nil))
	if errdefs.KindOf(err) != errdefs.Invalid || !strings.Contains(err.Error(), "--allow-net") {
		t.Errorf("err = %v; want invalid naming --allow-net", err)
	}
}

// A required variable of env_vars that is not granted is absent, with a
// warning naming the flag; missing_env: refuse (top level, or the skill's
// entry, which wins) denies the call instead.
func TestMissingEnv(t *testing.T) {
	m := base + "env_vars:\n  REQ: {description: needed, required: true}\n  OPT: {required: false}\n"
	tests := []struct {
		name    string
		policy  string
		denied  string // substring of the denial, "" for a call that runs
		warning string
	}{
		{"no policy", "", "", "env REQ: skill cat/name requires it (env_vars) and it is not granted, so the skill runs without it (grant with --allow-env REQ)"},
		{"warn", "missing_env: warn\n", "", `grant with --allow-env REQ, or env: [REQ] under skills["cat/name"] in /etc/p.yaml`},
		{"refuse", "version: 1\nmissing_env: refuse\n", "denied: env REQ: skill cat/name requires it and it is not granted (missing_env: refuse at /etc/p.yaml:2) (grant with --allow-env REQ", ""},
		{"skill refuses", "skills:\n  cat/name:\n    missing_env: refuse\n", "missing_env: refuse at /etc/p.yaml:3", ""},
		{"skill warns despite the top level", "missing_env: refuse\nskills:\n  cat/name:\n    missing_env: warn\n", "", "grant with --allow-env REQ"},
		{"another skill's setting", "skills:\n  cat/other:\n    missing_env: refuse\n", "", "grant with --allow-env REQ"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var pol *Policy
			if tt.policy != "" {
				pol = mustPolicy(t, tt.policy)
			}
			d, err := Decide(testSkill(t, skill.TierProject, m), Grants{Policy: pol}, env(map[string]string{"REQ": "r", "OPT": "o"}))
			if tt.denied != "" {
				if errdefs.KindOf(err) != errdefs.Denied || !strings.Contains(err.Error(), tt.denied) {
					t.Fatalf("err = %v; want denied containing %q", err, tt.denied)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(d.Spec.Env) != 0 || len(d.Config) != 0 {
				t.Errorf("ungranted variables given: %v %v", d.Spec.Env, d.Config)
			}
			all := strings.Join(d.Warnings, "\n")
			if !strings.Contains(all, tt.warning) {
				t.Errorf("warnings lack %q:\n%s", tt.warning, all)
			}
			// An optional variable that is not granted is simply absent.
			if strings.Contains(all, "OPT") {
				t.Errorf("warning about the optional variable:\n%s", all)
			}
		})
	}
}

// NetGrantHint names what grants a destination, by the manifest's shape
// and whom the call's grants are for.
func TestNetGrantHint(t *testing.T) {
	pol := mustPolicy(t, "version: 1\n")
	block := testSkill(t, skill.TierProject, base+"permissions: {network: [a.test]}\n")
	plain := testSkill(t, skill.TierProject, noBlock)
	for _, tt := range []struct {
		name string
		s    *skill.Skill
		g    Grants
		want string
	}{
		{"block", block, Grants{GrantUndeclared: true}, "b.test:443 in permissions.network of the skill's manifest, and --allow-net b.test:443"},
		{"run", plain, Grants{GrantUndeclared: true}, "--allow-net b.test:443"},
		{"run with a policy", plain, Grants{GrantUndeclared: true, Policy: pol}, `--allow-net b.test:443, or net: [b.test:443] under skills["cat/name"] in /etc/p.yaml`},
		{"serve", plain, Grants{Policy: pol}, `net: [b.test:443] under skills["cat/name"] in /etc/p.yaml`},
	} {
		if got := NetGrantHint(tt.s, tt.g, "b.test:443"); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}
