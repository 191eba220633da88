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
)

func TestAuditContext(t *testing.T) {
	AuditFrom(context.Background())(Event{}) // a no-op, never nil
	var n int
	ctx := WithAudit(context.Background(), func(Event) { n++ })
	AuditFrom(ctx)(Event{})
	if n != 1 {
		t.Errorf("sink called %d times", n)
	}
}

// TestSecretEndToEnd runs a proxy configured as a backend configures it
// from a Spec (internal/jail.EgressConfig): a bound secret reaches its
// (locally resolved) host as the value, the client only ever sees the
// placeholder, and the decision is audited with the secret's name.
func TestSecretEndToEnd(t *testing.T) {
	const value = "real-value-42"
	var seen string
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Get("Authorization")
		w.Write([]byte("you sent " + seen))
	}))
	defer ts.Close()
	port := portOf(t, ts)
	ph := NewPlaceholder()
	rec := &recorder{}
	cfg := Config{
		Allow:   rules(t, "api.example.com:"+strconv.Itoa(port)),
		Resolve: map[string][]netip.Addr{"api.example.com": {loop4}},
		Secrets: []Secret{{Name: "API_KEY", Placeholder: ph, Value: value, Hosts: rules(t, "api.example.com")}},
		Audit:   rec.add,
	}
	if err := cfg.Validate(); err != nil {
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
