package egress

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/skillbox-dev/skillbox/audit"
)

func TestEventRecord(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	allow := Event{Time: at, Egress: audit.Egress{
		Method: "CONNECT", Host: "api.example.com", Port: 443, Addr: "93.184.216.34:443",
		Decision: DecisionAllow, Intercepted: true, BytesUp: 10, BytesDown: 20, Secrets: []string{"API_KEY"},
	}}.Record()
	want := audit.Record{
		Time: at, Event: audit.EventEgress, Outcome: "ok",
		Detail: "allow CONNECT api.example.com:443 (up 10 B, down 20 B)",
		Egress: &audit.Egress{Method: "CONNECT", Host: "api.example.com", Port: 443, Addr: "93.184.216.34:443",
			Decision: "allow", Intercepted: true, BytesUp: 10, BytesDown: 20, Secrets: []string{"API_KEY"}},
	}
	if diff := cmp.Diff(want, allow); diff != "" {
		t.Errorf("allow (-want +got):\n%s", diff)
	}
	for _, tt := range []struct {
		decision, kind, err string
	}{
		{DecisionDeny, "denied", "not allowed (grant with --allow-net evil.test:80)"},
		{DecisionLimit, "limit", "not allowed (grant with --allow-net evil.test:80)"},
		{DecisionError, "unavailable", "not allowed (grant with --allow-net evil.test:80)"},
	} {
		r := Event{Egress: audit.Egress{Method: "GET", Host: "evil.test", Port: 80, Decision: tt.decision, Reason: "not allowed", Grant: "--allow-net evil.test:80", Status: 403}}.Record()
		if r.Outcome != "error" || r.ErrorKind != tt.kind || r.Error != tt.err || r.Egress.Status != 403 {
			t.Errorf("%s: %+v", tt.decision, r)
		}
	}
	// Written and read back like any record; the time is stamped when zero.
	var buf bytes.Buffer
	l := audit.New(&buf)
	if err := l.Write(Event{Egress: audit.Egress{Method: "GET", Host: "h.test", Port: 80, Decision: DecisionDeny}}.Record()); err != nil {
		t.Fatal(err)
	}
	recs, problems, err := audit.Read(strings.NewReader(buf.String()), audit.Filter{})
	if err != nil || len(problems) != 0 || len(recs) != 1 {
		t.Fatalf("read back: %v %v %v", recs, problems, err)
	}
	if r := recs[0]; r.Event != audit.EventEgress || r.Time.IsZero() || r.Egress == nil || r.Egress.Host != "h.test" || r.Error != "deny" {
		t.Errorf("read back %+v", r)
	}
	var raw map[string]any
	json.Unmarshal(buf.Bytes(), &raw)
	if e, _ := raw["egress"].(map[string]any); e["decision"] != "deny" || e["bytes_up"] != 0.0 {
		t.Errorf("JSON form: %s", buf.String())
	}
	// A connection refused before any request names no destination.
	r := Event{Egress: audit.Egress{Decision: DecisionLimit, Reason: "client connection limit reached (256 connections at once)", Status: 429}}.Record()
	if want := "limit a connection before any request: client connection limit reached (256 connections at once)"; r.Detail != want || r.ErrorKind != "limit" {
		t.Errorf("refused connection: detail %q kind %q, want %q", r.Detail, r.ErrorKind, want)
	}
}
