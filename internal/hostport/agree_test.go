package hostport_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/internal/egress"
	"github.com/skillbox-dev/skillbox/internal/hostport"
	"github.com/skillbox-dev/skillbox/internal/jail"
	"github.com/skillbox-dev/skillbox/internal/server"
	"github.com/skillbox-dev/skillbox/policy"
	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/skill"
)

// corpus is shared by every former parser of hosts. Before they shared
// internal/hostport, the manifest, policy and the egress proxy disagreed on
// several of these (see docs/RATIONALE.md, "One parser of hosts").
var corpus = []string{
	"api.example.com", "API.Example.COM", "example.com.", "example.com..", "a..b", ".example.com",
	"a_b.example.com", "-a.example.com", "a-.example.com", "127.1", "2130706433", "010.0.0.1",
	"bücher.example", "xn--bcher-kva.example", "*.bücher.example",
	"example.com:443", "example.com:0", "example.com:65535", "example.com:65536", "example.com:+80",
	"example.com:0080", "example.com:", "example.com:80:90",
	"*.example.com", "*.example.com:8080", "*.example.com.", "*", "*.", "a.*.example.com", "*.10.0.0.1",
	"10.0.0.1", "10.0.0.1:8080", "::1", "[::1]", "[::1]:80", "[2001:DB8:0::1]:443", "::ffff:1.2.3.4",
	"fe80::1%eth0", "[fe80::1%25eth0]:80", "[example.com]:80", "[10.0.0.1]:80", "[::1]:", "a:b:c",
	"", "https://example.com", "example.com/x", "user@example.com", "exa mple.com",
	strings.Repeat("a", 63) + ".com", strings.Repeat("a", 64) + ".com",
}

const manifestHead = "name: name\nversion: \"1.0\"\ndescription: d\n"

// TestCallersAgree builds a manifest request, an --allow-net grant, a policy
// file net grant and secret host, an egress rule, an --egress-resolve name
// and an --allow-host name from the same string, and checks that each
// gives the verdict (and canonical form) of hostport.Parse.
func TestCallersAgree(t *testing.T) {
	for _, s := range corpus {
		want, wantErr := hostport.Parse(s)
		ok := wantErr == nil
		q, _ := json.Marshal(s)
		t.Run(string(q), func(t *testing.T) {
			verdict := func(who string, err error) {
				t.Helper()
				if (err == nil) != ok {
					t.Errorf("%s: err = %v; hostport.Parse: %+v, %v", who, err, want, wantErr)
				}
			}

			m, err := skill.ParseManifest([]byte(manifestHead + "permissions:\n  network: [" + string(q) + "]\n"))
			verdict("manifest permissions.network", err)

			grant, err := policy.ParseHostPort(s)
			verdict("--allow-net", err)
			if err == nil && (grant.Host != want.Host || grant.Port != want.Port) {
				t.Errorf("--allow-net reads %+v; hostport %+v", grant, want)
			}

			_, err = policy.Parse("p.yaml", []byte("skills:\n  cat/name:\n    net: ["+string(q)+"]\n"))
			verdict("policy net", err)
			_, err = policy.Parse("p.yaml", []byte("secrets:\n  TOKEN: {hosts: ["+string(q)+"]}\n"))
			verdict("policy secrets hosts", err)

			rule, err := egress.ParseRule(s)
			verdict("egress rule", err)
			if err == nil && (rule.Host != want.Host || rule.Port != want.Port) {
				t.Errorf("egress reads %+v; hostport %+v", rule, want)
			}

			// Plain names only: --egress-resolve takes no port, pattern or
			// address; --allow-host takes names and addresses.
			plain := ok && want.Port == 0 && !want.IsPattern()
			_, _, err = policy.ParseResolve(s + "=127.0.0.1")
			if (err == nil) != (plain && !want.IsAddr()) {
				t.Errorf("--egress-resolve %s=127.0.0.1: err = %v; hostport %+v, %v", s, err, want, wantErr)
			}
			// --allow-host alone also takes '_' (a Host header, never resolved).
			if err := server.ValidHostName(s); (err == nil) != (plain || s == "a_b.example.com") {
				t.Errorf("--allow-host %s: err = %v; hostport %+v, %v", s, err, want, wantErr)
			}

			if !ok {
				return
			}
			// End to end: the skill requests s, the operator grants s, and
			// the egress proxy accepts the Spec policy builds.
			sk := &skill.Skill{ID: "cat/name", Tier: skill.TierProject, Dir: "/skills/cat/name", Digest: "sha256:00", Bundle: &skill.Bundle{Manifest: m}}
			d, err := policy.Decide(sk, policy.Grants{Net: []string{s}}, func(string) (string, bool) { return "", false })
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			if len(d.Spec.Network) != 1 || d.Spec.Network[0] != (sandbox.HostPort{Host: want.Host, Port: want.Port}) {
				t.Fatalf("Spec.Network = %+v; want %+v", d.Spec.Network, want)
			}
			cfg, err := jail.EgressConfig(d.Spec, nil)
			if err != nil {
				t.Fatalf("jail.EgressConfig: %v", err)
			}
			if len(cfg.Allow) != 1 || cfg.Allow[0] != (egress.Rule{Host: want.Host, Port: want.Port}) {
				t.Errorf("egress allows %+v; want %+v", cfg.Allow, want)
			}
		})
	}
}
