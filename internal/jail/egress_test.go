package jail

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skillbox-dev/skillbox/audit"
	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/egress"
	"github.com/skillbox-dev/skillbox/sandbox"
)

var loop4 = netip.MustParseAddr("127.0.0.1")

// rules parses egress rules.
func rules(t testing.TB, ss ...string) []egress.Rule {
	t.Helper()
	var out []egress.Rule
	for _, s := range ss {
		r, err := egress.ParseRule(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func TestEgressConfig(t *testing.T) {
	ph := egress.NewPlaceholder()
	spec := sandbox.Spec{
		Network: []sandbox.HostPort{{Host: "api.test", Port: 443}, {Host: "*.svc.test"}, {Host: "::1", Port: 8080}},
		Resolve: map[string][]netip.Addr{"api.test": {loop4}},
		Secrets: []sandbox.SecretBinding{{Name: "K", Placeholder: ph, Value: "v-123", Hosts: []sandbox.HostPort{{Host: "api.test"}}}},
	}
	var got []egress.Event
	cfg, err := EgressConfig(spec, func(e egress.Event) { got = append(got, e) })
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rules(t, "api.test:443", "*.svc.test", "[::1]:8080"), cfg.Allow); diff != "" {
		t.Errorf("Allow (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]egress.Secret{{Name: "K", Placeholder: ph, Value: "v-123", Hosts: rules(t, "api.test")}}, cfg.Secrets); diff != "" {
		t.Errorf("Secrets (-want +got):\n%s", diff)
	}
	if len(cfg.Resolve["api.test"]) != 1 || cfg.Resolve["api.test"][0] != loop4 {
		t.Errorf("Resolve = %v", cfg.Resolve)
	}
	spec.Resolve["api.test"][0] = netip.MustParseAddr("10.0.0.1")
	if cfg.Resolve["api.test"][0] != loop4 {
		t.Error("Resolve shares memory with the Spec")
	}
	cfg.Audit(egress.Event{Egress: audit.Egress{Host: "x"}})
	if len(got) != 1 {
		t.Error("audit sink not wired")
	}

	for name, bad := range map[string]sandbox.Spec{
		"secret without network": {Secrets: spec.Secrets},
		"bad host":               {Network: []sandbox.HostPort{{Host: "127.1"}}},
		"bad port":               {Network: []sandbox.HostPort{{Host: "a.test", Port: 70000}}},
		"short placeholder":      {Network: spec.Network, Secrets: []sandbox.SecretBinding{{Name: "K", Placeholder: "x", Value: "v", Hosts: spec.Secrets[0].Hosts}}},
		"upper-case resolve":     {Network: spec.Network, Resolve: map[string][]netip.Addr{"API.test": {loop4}}},
	} {
		if _, err := EgressConfig(bad, nil); errdefs.KindOf(err) != errdefs.Invalid {
			t.Errorf("%s: err = %v; want invalid", name, err)
		}
	}
}
