package egress

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/sandbox"
)

func TestFromSpec(t *testing.T) {
	ph := NewPlaceholder()
	spec := sandbox.Spec{
		Network: []sandbox.HostPort{{Host: "api.test", Port: 443}, {Host: "*.svc.test"}, {Host: "::1", Port: 8080}},
		Resolve: map[string][]netip.Addr{"api.test": {loop4}},
		Secrets: []sandbox.SecretBinding{{Name: "K", Placeholder: ph, Value: "v-123", Hosts: []sandbox.HostPort{{Host: "api.test"}}}},
	}
	var got []Event
	cfg, err := FromSpec(spec, func(e Event) { got = append(got, e) })
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rules(t, "api.test:443", "*.svc.test", "[::1]:8080"), cfg.Allow); diff != "" {
		t.Errorf("Allow (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]Secret{{Name: "K", Placeholder: ph, Value: "v-123", Hosts: rules(t, "api.test")}}, cfg.Secrets); diff != "" {
		t.Errorf("Secrets (-want +got):\n%s", diff)
	}
	if len(cfg.Resolve["api.test"]) != 1 || cfg.Resolve["api.test"][0] != loop4 {
		t.Errorf("Resolve = %v", cfg.Resolve)
	}
	spec.Resolve["api.test"][0] = netip.MustParseAddr("10.0.0.1")
	if cfg.Resolve["api.test"][0] != loop4 {
		t.Error("Resolve shares memory with the Spec")
	}
	cfg.Audit(Event{Host: "x"})
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
		if _, err := FromSpec(bad, nil); errdefs.KindOf(err) != errdefs.Invalid {
			t.Errorf("%s: err = %v; want invalid", name, err)
		}
	}
}

func TestAuditContext(t *testing.T) {
	AuditFrom(context.Background())(Event{}) // a no-op, never nil
	var n int
	ctx := WithAudit(context.Background(), func(Event) { n++ })
	AuditFrom(ctx)(Event{})
	if n != 1 {
		t.Errorf("sink called %d times", n)
	}
}

// TestFromSpecEndToEnd runs a proxy built from a Spec the way a backend
// does: a bound secret reaches its (locally resolved) host as the value,
// the client only ever sees the placeholder, and the decision is audited
// with the secret's name.
func TestFromSpecEndToEnd(t *testing.T) {
	const value = "real-value-42"
	var seen string
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Get("Authorization")
		w.Write([]byte("you sent " + seen))
	}))
	defer ts.Close()
	port := portOf(t, ts)
	ph := NewPlaceholder()
	spec := sandbox.Spec{
		Network: []sandbox.HostPort{{Host: "api.example.com", Port: port}},
		Resolve: map[string][]netip.Addr{"api.example.com": {loop4}},
		Secrets: []sandbox.SecretBinding{{Name: "API_KEY", Placeholder: ph, Value: value, Hosts: []sandbox.HostPort{{Host: "api.example.com"}}}},
	}
	rec := &recorder{}
	cfg, err := FromSpec(spec, rec.add)
	if err != nil {
		t.Fatal(err)
	}
	cfg.UpstreamRootCAs = serverPool(ts)
	h := start(t, cfg)
	req, _ := http.NewRequest("GET", "https://api.example.com:"+strconv.Itoa(port)+"/", nil)
	req.Header.Set("Authorization", "Bearer "+ph)
	res, err := h.client(h.caPool(t)).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(res)
	res.Body.Close()
	if seen != "Bearer "+value {
		t.Errorf("server saw %q", seen)
	}
	if strings.Contains(body, value) || !strings.Contains(body, ph) {
		t.Errorf("client saw %q", body)
	}
	ev := rec.wait(t, func(e Event) bool { return e.Decision == DecisionAllow && e.Method == "GET" })
	if ev.Host != "api.example.com" || !cmp.Equal(ev.Secrets, []string{"API_KEY"}) || !ev.Intercepted {
		t.Errorf("event = %+v", ev)
	}
}
