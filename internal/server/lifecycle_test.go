package server_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/skillbox-dev/skillbox"
	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/server"
)

// --warm is per skill: the HTTP envelope and the MCP _meta of a call of a
// warm skill carry "warm": true; those of any other skill have no "warm".
// On the linux backend, which runs a warm skill warm (a backend without
// zygotes ignores it and says nothing).
func TestWarmShownPerSkill(t *testing.T) {
	s := newServer(t, server.Config{Call: skillbox.CallOptions{Backend: "linux", Warm: []string{"test/echo"}}})
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	runCases(t, hs.URL, []httpCase{
		{"warm skill", "POST", "/v1/skills/test/echo/call", `{"msg":"hi"}`, nil, 200, `"warm":true`},
	})
	if _, body := doHTTP(t, hs.URL, httpCase{method: "POST", path: "/v1/skills/test/raises/call", body: `{}`}); strings.Contains(body, `"warm"`) {
		t.Errorf("a failed call's envelope mentions warm: %s", body)
	}
	if _, body := doHTTP(t, hs.URL, httpCase{method: "POST", path: "/v1/skills/test/shape/call", body: `{"n":1}`}); strings.Contains(body, `"warm"`) {
		t.Errorf("a skill not named by --warm ran warm: %s", body)
	}
	cs := connectHTTP(t, s, nil)
	ctx := context.Background()
	for _, tc := range []struct {
		tool string
		args map[string]any
		warm bool
	}{{"test_echo", map[string]any{"msg": "hi"}, true}, {"test_shape", map[string]any{"n": 1}, false}} {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tc.tool, Arguments: tc.args})
		if err != nil || res.IsError {
			t.Fatalf("%s: %v %+v", tc.tool, err, res)
		}
		meta, _ := res.Meta[server.MetaKey].(map[string]any)
		if w, ok := meta["warm"]; tc.warm && w != true || !tc.warm && ok {
			t.Errorf("%s: _meta warm = %v (present %v); want %v", tc.tool, w, ok, tc.warm)
		}
	}
}

// A call its HTTP client cancels is canceled (logged as such; 499 if
// anyone still reads it), not unavailable or internal.
func TestClientCancelIsCanceled(t *testing.T) {
	if got := server.StatusOf(errdefs.Canceled); got != 499 {
		t.Errorf("StatusOf(canceled) = %d, want 499", got)
	}
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(syncWriter{&mu, &buf}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	s := newServer(t, server.Config{Logger: logger})
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	pf := pidFile(t)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", hs.URL+"/v1/skills/test/sleep/call", strings.NewReader(`{"seconds":60,"pidfile":"`+pf+`"}`))
	req.Header.Set("Content-Type", "application/json")
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	pid := waitPID(t, pf)
	cancel()
	<-done
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		log := buf.String()
		mu.Unlock()
		if strings.Contains(log, "kind=canceled") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no call logged as canceled:\n%s", log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitGone(t, pid)
}

type syncWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (s syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}
