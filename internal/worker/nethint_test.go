//go:build linux

package worker

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/skillbox-dev/skillbox/errdefs"
)

// netHintSkill raises the audit events a network attempt raises, without
// touching the network (sys.audit runs the hooks only): a name resolved,
// an address connected to, a bytes host, a service name, loopback (never
// reported), a unix socket and malformed arguments (which must not break
// the call), then fails or returns as params say.
const netHintSkill = `
import sys
from skillware.core.base_skill import BaseSkill

class Net(BaseSkill):
    def execute(self, params):
        sys.audit("socket.getaddrinfo", "API.Example.com", 443, 0, 1, 6)
        sys.audit("socket.getaddrinfo", "api.example.com", "443", 0, 1, 6)
        sys.audit("socket.connect", None, ("198.51.100.7", 8443))
        sys.audit("socket.getaddrinfo", b"bytes.example", "https", 0, 0, 0)
        sys.audit("socket.gethostbyname", "noport.example")
        sys.audit("socket.getaddrinfo", "localhost", 80, 0, 0, 0)
        sys.audit("socket.connect", None, ("127.0.0.1", 80))
        sys.audit("socket.connect", None, ("::1", 80, 0, 0))
        sys.audit("socket.connect", None, "/run/some.sock")
        sys.audit("socket.connect", None)
        sys.audit("socket.getaddrinfo", None, 80, 0, 0, 0)
        sys.audit("socket.getaddrinfo", 12, object(), 0, 0, 0)
        if params.get("fail"):
            raise ConnectionError("no network")
        return {"ok": True}
`

func TestHarnessNetHint(t *testing.T) {
	bundle := writeBundle(t, map[string]string{"skill.py": netHintSkill})
	want := []NetAttempt{{"api.example.com", 443}, {"198.51.100.7", 8443}, {"bytes.example", 443}, {"noport.example", 0}}
	p, _ := load(t, bundle, ModeSession)
	var got [][]NetAttempt
	ctx := WithNetAttempts(tctx(t, 20*time.Second), func(a []NetAttempt) { got = append(got, a) })
	if res, err := p.Call(ctx, 1, json.RawMessage(`{}`), nil); err != nil || string(res) != `{"ok":true}` {
		t.Fatalf("call: %s %v (stderr %s)", res, err, p.Stderr.Bytes())
	}
	// The attempts of a call that failed come back with its error.
	if _, err := p.Call(ctx, 2, json.RawMessage(`{"fail":true}`), nil); !errors.Is(err, errdefs.ErrSkill) {
		t.Fatalf("failing call: %v", err)
	}
	if len(got) != 2 {
		t.Fatalf("reported %d times, want 2: %v", len(got), got)
	}
	for i, g := range got {
		if diff := cmp.Diff(want, g); diff != "" {
			t.Errorf("call %d attempts (-want +got):\n%s", i+1, diff)
		}
	}
	// A call that does not ask records nothing, even with the hook in place.
	got = nil
	if _, err := p.Call(context.Background(), 3, json.RawMessage(`{}`), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Call(WithNetAttempts(tctx(t, 20*time.Second), func(a []NetAttempt) { got = append(got, a) }), 4, json.RawMessage(`{}`), nil); err != nil || len(got) != 1 {
		t.Fatalf("call after one without the hint: %v %v", err, got)
	}
}

// A reply's net_attempts is the skill's to forge: what is not a list of
// host/port objects is dropped, never the reply.
func TestParseNetAttempts(t *testing.T) {
	long := make([]byte, 254)
	for i := range long {
		long[i] = 'a'
	}
	for _, tt := range []struct {
		in   string
		want []NetAttempt
	}{
		{`[{"host":"a.test","port":1},{"host":"a.test","port":1},{"host":"b.test","port":0}]`, []NetAttempt{{"a.test", 1}, {"b.test", 0}}},
		{`{"host":"a.test"}`, nil},
		{`[1,"x",{"host":5},{"host":"","port":1},{"host":"a b","port":1},{"host":"c.test","port":70000},{"host":"` + string(long) + `"},{"host":"d.test","port":-1},{"host":"ok.test","port":2}]`, []NetAttempt{{"ok.test", 2}}},
	} {
		if diff := cmp.Diff(tt.want, ParseNetAttempts(json.RawMessage(tt.in))); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.in, diff)
		}
	}
	var many []NetAttempt
	for i := range 40 {
		many = append(many, NetAttempt{"h.test", i + 1})
	}
	b, _ := json.Marshal(many)
	if got := ParseNetAttempts(b); len(got) != MaxNetAttempts {
		t.Errorf("kept %d of 40, want %d", len(got), MaxNetAttempts)
	}
}
