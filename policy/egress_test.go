package policy

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/egress"
	"github.com/skillbox-dev/skillbox/internal/jail"
	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/skill"
)

const secretValue = "real-key-0123456789abcdef"

const etherscanManifest = base + `permissions:
  network: ["api.etherscan.io:443", "api.coingecko.com:443"]
env_vars:
  ETHERSCAN_API_KEY: {description: key, required: true}
  PLAIN: {description: not bound, required: false}
`

func mustParse(t *testing.T, text string) *Policy {
	t.Helper()
	p, err := Parse("p.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func etherscanGrants(t *testing.T, ph *Placeholders) Grants {
	return Grants{
		Env:          []string{"ETHERSCAN_API_KEY", "PLAIN"},
		Net:          []string{"api.etherscan.io:443", "api.coingecko.com"},
		Policy:       mustParse(t, "secrets:\n  ETHERSCAN_API_KEY: {hosts: [api.etherscan.io]}\n"),
		Placeholders: ph,
	}
}

var etherscanEnv = env(map[string]string{"ETHERSCAN_API_KEY": secretValue, "PLAIN": "visible"})

func TestSecretBindingGivesPlaceholder(t *testing.T) {
	s := testSkill(t, skill.TierProject, etherscanManifest)
	var ph Placeholders
	d, err := Decide(s, etherscanGrants(t, &ph), etherscanEnv)
	if err != nil {
		t.Fatal(err)
	}
	spec := d.Spec
	if len(spec.Secrets) != 1 {
		t.Fatalf("Spec.Secrets = %v", spec.Secrets)
	}
	b := spec.Secrets[0]
	if b.Name != "ETHERSCAN_API_KEY" || b.Value != secretValue || !strings.HasPrefix(b.Placeholder, egress.PlaceholderPrefix) {
		t.Errorf("binding = %v (value kept: %v)", b, b.Value == secretValue)
	}
	if diff := cmp.Diff([]sandbox.HostPort{{Host: "api.etherscan.io"}}, b.Hosts); diff != "" {
		t.Errorf("hosts (-want +got):\n%s", diff)
	}
	// The skill's env and config see the placeholder only; unbound
	// variables are unchanged.
	if spec.Env["ETHERSCAN_API_KEY"] != b.Placeholder || d.Config["ETHERSCAN_API_KEY"] != b.Placeholder {
		t.Errorf("env %q, config %q; want the placeholder %q", spec.Env["ETHERSCAN_API_KEY"], d.Config["ETHERSCAN_API_KEY"], b.Placeholder)
	}
	if spec.Env["PLAIN"] != "visible" || d.Config["PLAIN"] != "visible" {
		t.Errorf("unbound variable changed: env %q config %q", spec.Env["PLAIN"], d.Config["PLAIN"])
	}
	if !slices.Contains(spec.Require, sandbox.FeatureSecretBinding) || !slices.Contains(spec.Require, sandbox.FeatureNetAllowlist) {
		t.Errorf("Require = %v; want secret-binding and net-allowlist", spec.Require)
	}
	if diff := cmp.Diff([]string{"ETHERSCAN_API_KEY"}, d.SecretNames); diff != "" {
		t.Errorf("SecretNames (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"ETHERSCAN_API_KEY", "PLAIN"}, d.EnvNames); diff != "" {
		t.Errorf("EnvNames (-want +got):\n%s", diff)
	}
	// The value is in no serialised or printed form of the Spec.
	js, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(js), secretValue) || !strings.Contains(string(js), b.Placeholder) {
		t.Errorf("Spec JSON leaks the value or lacks the placeholder: %s", js)
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if out := fmt.Sprintf(verb, spec.Secrets); strings.Contains(out, secretValue) {
			t.Errorf("%s prints the value: %s", verb, out)
		}
	}
	for _, verb := range []string{"%v", "%+v"} {
		if out := fmt.Sprintf(verb, spec); strings.Contains(out, secretValue) {
			t.Errorf("%s of the Spec prints the value", verb)
		}
	}
	// The Spec converts to a valid proxy config carrying the value.
	cfg, err := jail.EgressConfig(spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Secrets) != 1 || cfg.Secrets[0].Value != secretValue || cfg.Secrets[0].Placeholder != b.Placeholder {
		t.Errorf("egress secrets = %d entries", len(cfg.Secrets))
	}
}

func TestSecretPlaceholderStability(t *testing.T) {
	s := testSkill(t, skill.TierProject, etherscanManifest)
	decide := func(ph *Placeholders, lookup LookupEnv) string {
		t.Helper()
		d, err := Decide(s, etherscanGrants(t, ph), lookup)
		if err != nil {
			t.Fatal(err)
		}
		return d.Spec.Secrets[0].Placeholder
	}
	var ph Placeholders
	first := decide(&ph, etherscanEnv)
	if again := decide(&ph, etherscanEnv); again != first {
		t.Errorf("same grant, same value: placeholder changed %q -> %q", first, again)
	}
	rotated := env(map[string]string{"ETHERSCAN_API_KEY": "rotated-key-xyz", "PLAIN": "visible"})
	if other := decide(&ph, rotated); other == first {
		t.Error("a changed value kept its placeholder")
	}
	if a, b := decide(nil, etherscanEnv), decide(nil, etherscanEnv); a == b || a == first {
		t.Error("nil Placeholders must give a fresh placeholder every time")
	}
	// Another skill gets another placeholder for the same secret.
	s2 := testSkill(t, skill.TierProject, etherscanManifest)
	s2.ID = "cat/other"
	d, err := Decide(s2, etherscanGrants(t, &ph), etherscanEnv)
	if err != nil {
		t.Fatal(err)
	}
	if d.Spec.Secrets[0].Placeholder == first {
		t.Error("two skills share a placeholder")
	}
}

func TestSecretBoundHostMustBeGranted(t *testing.T) {
	tests := []struct {
		name, manifestNet, grantNet, hosts string
		wantKind                           errdefs.Kind
		want                               []string
	}{
		{"host not requested", `["api.coingecko.com:443"]`, "api.coingecko.com", "[api.etherscan.io]",
			errdefs.Denied, []string{"network api.etherscan.io for secret ETHERSCAN_API_KEY", "--allow-net api.etherscan.io", "secrets.ETHERSCAN_API_KEY.hosts at p.yaml:3", "granted: api.coingecko.com:443"}},
		{"port not granted", `["api.etherscan.io:443"]`, "api.etherscan.io:443", `["api.etherscan.io:8443"]`,
			errdefs.Denied, []string{"network api.etherscan.io:8443 for secret"}},
		{"wildcard binding needs a wildcard grant", `["api.etherscan.io:443"]`, "api.etherscan.io", `["*.etherscan.io"]`,
			errdefs.Denied, []string{"*.etherscan.io"}},
		{"no network at all", `[]`, "", "[api.etherscan.io]",
			errdefs.Denied, []string{"granted: no network"}},
		{"subdomain covered by wildcard grant", `["*.etherscan.io"]`, "*.etherscan.io", "[api.etherscan.io]", "", nil},
		{"any port binding, port grant", `["api.etherscan.io:443"]`, "api.etherscan.io:443", "[api.etherscan.io]", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := base + "permissions:\n  network: " + tt.manifestNet + "\nenv_vars:\n  ETHERSCAN_API_KEY: {description: k, required: true}\n"
			g := Grants{
				Env:    []string{"ETHERSCAN_API_KEY"},
				Policy: mustParse(t, "version: 1\nsecrets:\n  ETHERSCAN_API_KEY: {hosts: "+tt.hosts+"}\n"),
			}
			if tt.grantNet != "" {
				g.Net = []string{tt.grantNet}
			}
			d, err := Decide(testSkill(t, skill.TierProject, m), g, etherscanEnv)
			if tt.wantKind == "" {
				if err != nil {
					t.Fatal(err)
				}
				if d.Config["ETHERSCAN_API_KEY"] == secretValue {
					t.Error("the value reached the config")
				}
				return
			}
			if errdefs.KindOf(err) != tt.wantKind {
				t.Fatalf("err = %v; want kind %s", err, tt.wantKind)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v; want it to contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), secretValue) {
				t.Error("error quotes the value")
			}
		})
	}
}

func TestSecretNotBoundOrNotGranted(t *testing.T) {
	s := testSkill(t, skill.TierProject, etherscanManifest)
	// Not granted: neither value nor placeholder, and no binding.
	g := etherscanGrants(t, nil)
	g.Env = []string{"ETHERSCAN_API_KEY"}
	g.Policy = mustParse(t, "secrets:\n  PLAIN: {hosts: [api.coingecko.com]}\n")
	d, err := Decide(s, g, etherscanEnv)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Spec.Secrets) != 0 || d.Config["ETHERSCAN_API_KEY"] != secretValue || slices.Contains(d.Spec.Require, sandbox.FeatureSecretBinding) {
		t.Errorf("unbound secret: secrets %v require %v", d.Spec.Secrets, d.Spec.Require)
	}
	// A control character cannot be substituted into HTTP.
	g = etherscanGrants(t, nil)
	_, err = Decide(s, g, env(map[string]string{"ETHERSCAN_API_KEY": "a\nb"}))
	if errdefs.KindOf(err) != errdefs.Invalid || !strings.Contains(err.Error(), "control character") {
		t.Errorf("err = %v", err)
	}
}

func TestParseResolve(t *testing.T) {
	good := []struct {
		in, host, addr string
	}{
		{"api.example.com=127.0.0.1", "api.example.com", "127.0.0.1"},
		{"API.Example.COM.=10.0.0.7", "api.example.com", "10.0.0.7"},
		{"localhost=::1", "localhost", "::1"},
		{"v6.test=2001:db8::5", "v6.test", "2001:db8::5"},
		{"mapped.test=::ffff:127.0.0.1", "mapped.test", "127.0.0.1"},
	}
	for _, tt := range good {
		h, a, err := ParseResolve(tt.in)
		if err != nil || h != tt.host || a != netip.MustParseAddr(tt.addr) {
			t.Errorf("ParseResolve(%q) = %q, %v, %v; want %q, %s", tt.in, h, a, err, tt.host, tt.addr)
		}
	}
	bad := []struct{ in, want string }{
		{"", "want HOST=IP"},
		{"api.example.com", "want HOST=IP"},
		{"=127.0.0.1", "want HOST=IP"},
		{"api.example.com=", "want HOST=IP"},
		{"api.example.com:443=127.0.0.1", "plain host name"},
		{"*.example.com=127.0.0.1", "plain host name"},
		{"10.0.0.1=127.0.0.1", "plain host name"},
		{"[::1]=127.0.0.1", "plain host name"},
		{"bad_name=127.0.0.1", "bad host name"},
		{"127.1=127.0.0.1", "127.1"},
		{"api.example.com=localhost", "not an IP address"},
		{"api.example.com=127.0.0.1:8080", "not an IP address"},
		{"api.example.com=[::1]", "not an IP address"},
		{"api.example.com=127.0.0.1,10.0.0.1", "not an IP address"},
		{"api.example.com=127.0.0.1=x", "not an IP address"},
		{"api.example.com=fe80::1%eth0", "zones"},
		{"api.example.com=0.0.0.0", "unspecified or multicast"},
		{"api.example.com=224.0.0.1", "unspecified or multicast"},
		{"api.example.com= 127.0.0.1", "not an IP address"},
	}
	for _, tt := range bad {
		if _, _, err := ParseResolve(tt.in); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseResolve(%q) err = %v; want %q", tt.in, err, tt.want)
		}
	}
}

func TestEgressResolveGrants(t *testing.T) {
	m := base + "permissions:\n  network: [\"api.test:8080\", \"*.svc.test\"]\n"
	s := testSkill(t, skill.TierProject, m)
	pol := mustParse(t, `skills:
  cat/name:
    egress_resolve: ["a.svc.test=10.0.0.2", "other.test=10.0.0.3"]
egress_resolve: ["api.test=10.0.0.9", "unrelated.test=10.0.0.4"]
`)
	g := Grants{
		Net:     []string{"api.test:8080", "*.svc.test"},
		Resolve: []string{"api.test=127.0.0.1", "api.test=::1", "api.test=127.0.0.1", "nothere.test=127.0.0.1"},
		Policy:  pol,
	}
	d, err := Decide(s, g, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]netip.Addr{
		"api.test":   {netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1"), netip.MustParseAddr("10.0.0.9")},
		"a.svc.test": {netip.MustParseAddr("10.0.0.2")},
	}
	if diff := cmp.Diff(want, d.Spec.Resolve, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("Resolve (-want +got):\n%s", diff)
	}
	warnings := strings.Join(d.Warnings, "\n")
	for _, w := range []string{"--egress-resolve nothere.test=127.0.0.1", `skills["cat/name"].egress_resolve other.test=10.0.0.3`} {
		if !strings.Contains(warnings, w) {
			t.Errorf("warnings %q lack %q", warnings, w)
		}
	}
	if strings.Contains(warnings, "unrelated.test") {
		t.Errorf("a global mapping the skill does not use warned: %q", warnings)
	}
	cfg, err := jail.EgressConfig(d.Spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Resolve["api.test"]) != 3 || len(cfg.Allow) != 2 {
		t.Errorf("egress config: allow %v resolve %v", cfg.Allow, cfg.Resolve)
	}
	// The JSON form of the Spec carries the mapping (it is part of the grant).
	js, _ := json.Marshal(d.Spec)
	if !strings.Contains(string(js), `"resolve":{"a.svc.test":["10.0.0.2"]`) {
		t.Errorf("spec JSON: %s", js)
	}

	// A bad flag is invalid, naming it.
	g.Resolve = []string{"api.test=nope"}
	if _, err := Decide(s, g, env(nil)); errdefs.KindOf(err) != errdefs.Invalid || !strings.Contains(err.Error(), `--egress-resolve "api.test=nope"`) {
		t.Errorf("err = %v", err)
	}
	// Without a network grant, no mapping is given.
	d, err = Decide(testSkill(t, skill.TierProject, base), Grants{Resolve: []string{"api.test=127.0.0.1"}}, env(nil))
	if err != nil || d.Spec.Resolve != nil {
		t.Errorf("no network: resolve %v, err %v", d.Spec.Resolve, err)
	}
}

func TestPolicyFileEgressResolve(t *testing.T) {
	p := mustParse(t, "egress_resolve: [\"a.test=127.0.0.1\"]\nskills:\n  cat/name:\n    egress_resolve: [\"b.test=::1\"]\n")
	if diff := cmp.Diff([]string{"a.test=127.0.0.1"}, p.Resolve); diff != "" || p.ResolveLine != 1 {
		t.Errorf("global (-want +got):\n%s line %d", diff, p.ResolveLine)
	}
	if diff := cmp.Diff([]string{"b.test=::1"}, p.Skills["cat/name"].Resolve); diff != "" {
		t.Errorf("per skill (-want +got):\n%s", diff)
	}
	for _, tt := range []struct{ text, want string }{
		{"egress_resolve: [\"a.test\"]\n", `p.yaml:1: egress_resolve: "a.test": want HOST=IP`},
		{"egress_resolve: a.test=127.0.0.1\n", "must be a list"},
		{"skills:\n  cat/name:\n    egress_resolve: [\"*.a.test=127.0.0.1\"]\n", `p.yaml:3: skills["cat/name"].egress_resolve: "*.a.test=127.0.0.1"`},
		{"secrets:\n  K: {hosts: [\"127.1\"]}\n", "secrets.K.hosts"},
	} {
		_, err := Parse("p.yaml", []byte(tt.text))
		if errdefs.KindOf(err) != errdefs.Invalid || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q) err = %v; want %q", tt.text, err, tt.want)
		}
	}
}
