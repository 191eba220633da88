package egress

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

// TestSetAuditAndResetBudget checks what a proxy serving one call after
// another relies on: each client connection reports to the sink current
// when it was accepted, and ResetBudget makes MaxConns count from zero.
func TestSetAuditAndResetBudget(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer ts.Close()
	first := &recorder{}
	h := start(t, Config{
		Allow:    rules(t, "api.test", "*.api.test"),
		Resolve:  map[string][]netip.Addr{"api.test": {loop4}, "x.api.test": {loop4}},
		MaxConns: 1,
		Audit:    first.add,
	})
	port := portOf(t, ts)
	c1 := h.client(nil)
	if code, _, _ := get(t, c1, fmt.Sprintf("http://api.test:%d/", port)); code != 200 {
		t.Fatalf("first call: %d", code)
	}
	second := &recorder{}
	h.p.SetAudit(second.add)
	// c1's kept-alive connection still belongs to the first call.
	if code, _, _ := get(t, c1, fmt.Sprintf("http://x.api.test:%d/", port)); code != http.StatusTooManyRequests {
		t.Fatalf("over the budget: %d", code)
	}
	first.wait(t, func(e Event) bool { return e.Decision == DecisionLimit && e.Host == "x.api.test" })
	h.p.ResetBudget()
	// A new client connection, accepted after SetAudit, reports to the second sink.
	c1.CloseIdleConnections()
	c2 := h.client(nil)
	if code, _, _ := get(t, c2, fmt.Sprintf("http://x.api.test:%d/", port)); code != 200 {
		t.Fatalf("after ResetBudget: %d", code)
	}
	second.wait(t, func(e Event) bool { return e.Decision == DecisionAllow && e.Host == "x.api.test" })
	for _, e := range second.all() {
		if e.Host == "api.test" {
			t.Errorf("first call's event in the second sink: %+v", e)
		}
	}
	for _, e := range first.all() {
		if e.Decision == DecisionAllow && e.Host == "x.api.test" {
			t.Errorf("second call's event in the first sink: %+v", e)
		}
	}
}
