package server_test

import (
	"bytes"
	"context"
	"io"
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

// An MCP tools/call whose client drops its connection is cancelled (over
// HTTP without an event store its answer can never be delivered), and its
// call slot stays taken until its sandbox is gone; a shutdown that follows
// the drop leaves nothing running. Before, the slot was freed with the
// POST while the call ran on uncounted: past --max-concurrent, and past a
// shutdown, which saw nothing in flight and returned with the skill still
// sleeping.
func TestMCPDroppedCallCancelled(t *testing.T) {
	const echo = `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"test_echo","arguments":{"msg":"hi"}}}`
	t.Run("slot", func(t *testing.T) {
		logs := &logBuffer{}
		s := newServer(t, server.Config{MaxConcurrent: 1, Logger: logs.logger()})
		url, _, _ := serve(t, s)
		sid := mcpReady(t, url)
		pid, drop := droppableCall(t, url, sid)
		if resp, body := mcpPost(t, url, echo, sid); resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("a second call while the first runs: %d %.200s; want 429", resp.StatusCode, body)
		}
		drop()
		// Every answer to the second call is 429 until the first call's
		// sandbox is gone, then the call runs.
		deadline := time.Now().Add(hangGuard)
		for {
			resp, body := mcpPost(t, url, echo, sid)
			if resp.StatusCode == http.StatusOK {
				if running(t, pid) {
					t.Fatalf("a second call ran while the dropped call's sandbox (pid %d) still ran: its slot was freed with its POST", pid)
				}
				if !strings.Contains(body, "hi") || strings.Contains(body, `"isError":true`) {
					t.Errorf("the second call: %.300s", body)
				}
				break
			}
			if resp.StatusCode != http.StatusTooManyRequests {
				t.Fatalf("the second call: %d %.200s", resp.StatusCode, body)
			}
			if time.Now().After(deadline) {
				t.Fatalf("the slot was still taken %v after the client dropped its call (pid %d running: %v)", hangGuard, pid, running(t, pid))
			}
			time.Sleep(20 * time.Millisecond)
		}
		logs.wait(t, "kind=canceled")
	})
	t.Run("shutdown", func(t *testing.T) {
		logs := &logBuffer{}
		s := newServer(t, server.Config{ShutdownTimeout: hangGuard, Logger: logs.logger()})
		url, stop, errc := serve(t, s)
		sid := mcpReady(t, url)
		pid, drop := droppableCall(t, url, sid)
		drop()
		start := time.Now()
		stop()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(2 * hangGuard):
			t.Fatalf("Serve did not return within %v", 2*hangGuard)
		}
		// The call was cancelled when its client went: the shutdown had
		// no need to wait for its deadline.
		if d := time.Since(start); d >= hangGuard {
			t.Errorf("shutdown took %v, its whole deadline", d)
		}
		if running(t, pid) {
			t.Errorf("the dropped call's sandbox (pid %d) outlived Serve", pid)
		}
		logs.wait(t, "kind=canceled")
	})
}

// mcpReady opens an MCP session on url and completes its initialisation.
func mcpReady(t *testing.T, url string) string {
	t.Helper()
	sid := mcpSession(t, url)
	if resp, body := mcpPost(t, url, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, sid); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("notifications/initialized: %d %s", resp.StatusCode, body)
	}
	return sid
}

// droppableCall starts an MCP tools/call of test/sleep (a minute) in
// session sid, on a connection of its own, and waits until its skill runs;
// drop closes that connection and waits until the client has let go.
func droppableCall(t *testing.T, url, sid string) (pid int, drop func()) {
	t.Helper()
	pf := pidFile(t)
	ctx, cancel := context.WithCancel(context.Background())
	body := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"test_sleep","arguments":{"seconds":60,"pidfile":"` + pf + `"}}}`
	req, _ := http.NewRequestWithContext(ctx, "POST", url+"/mcp", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", sid)
	req.Header.Set("MCP-Protocol-Version", "2025-06-18")
	// A transport of its own: the connection is not shared or kept.
	tr := &http.Transport{DisableKeepAlives: true}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := (&http.Client{Transport: tr}).Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	pid = waitPID(t, pf)
	return pid, func() {
		cancel()
		<-done
		tr.CloseIdleConnections()
	}
}

// logBuffer collects a server's logs for a test to wait on.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(syncWriter{&l.mu, &l.buf}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// wait waits until the logs hold want.
func (l *logBuffer) wait(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for {
		l.mu.Lock()
		log := l.buf.String()
		l.mu.Unlock()
		if strings.Contains(log, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log after %v:\n%s", want, hangGuard, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
