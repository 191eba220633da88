package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/internal/schema"
	"github.com/skillbox-dev/skillbox/internal/server"
)

type httpCase struct {
	name, method, path, body string
	header                   map[string]string
	status                   int
	want                     string // substring of the body
}

func doHTTP(t *testing.T, url string, c httpCase) (int, string) {
	t.Helper()
	req, err := http.NewRequest(c.method, url+c.path, strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	if c.method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func runCases(t *testing.T, url string, cases []httpCase) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := doHTTP(t, url, c)
			if status != c.status || !strings.Contains(body, c.want) {
				t.Errorf("%s %s = %d %s\nwant %d and %q", c.method, c.path, status, body, c.status, c.want)
			}
		})
	}
}

func TestHTTPAPI(t *testing.T) {
	s := newServer(t, server.Config{MaxBodyBytes: 1 << 10})
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	big := `{"msg":"` + strings.Repeat("x", 2<<10) + `"}`
	runCases(t, hs.URL, []httpCase{
		{"health", "GET", "/v1/health", "", nil, 200, `"ok":true`},
		{"list", "GET", "/v1/skills", "", nil, 200, `{"id":"test/echo","version":"1.0.0","tier":"external","description":"Returns its params.","tool":"test_echo"`},
		{"inspect", "GET", "/v1/skills/test/echo", "", nil, 200, `"instructions":"# echo\n\nCall echo`},
		{"inspect unknown", "GET", "/v1/skills/test/nope", "", nil, 404, `"kind":"not_found"`},
		{"schema default", "GET", "/v1/skills/test/echo/schema", "", nil, 200, `"inputSchema"`},
		{"schema bad format", "GET", "/v1/skills/test/echo/schema?format=xml", "", nil, 400, `"kind":"invalid"`},
		{"schema ollama", "GET", "/v1/skills/test/echo/schema?format=ollama", "", nil, 200, "Tool: test_echo"},
		{"call", "POST", "/v1/skills/test/echo/call", `{"msg":"hi"}`, nil, 200, `"result":{"params":{"msg":"hi"}},"skill":{"id":"test/echo","version":"1.0.0"`},
		{"call empty body", "POST", "/v1/skills/test/echo/call", ``, nil, 200, `"ok":true`},
		{"call raises", "POST", "/v1/skills/test/raises/call", `{}`, nil, 422, `{"ok":false,"error":{"kind":"skill","message":"skill failed: ValueError: bad wallet address","type":"ValueError"`},
		{"call raises: what it printed", "POST", "/v1/skills/test/raises/call", `{}`, nil, 422, `"stdout":"checked the address\n"`},
		{"call of a skill that fails to load", "POST", "/v1/skills/test/loadfail/call", `{}`, nil, 422, `"message":"loading skill failed: RuntimeError: no settings"`},
		{"call of a skill that fails to load: what it printed", "POST", "/v1/skills/test/loadfail/call", `{}`, nil, 422, `"stdout":"reading settings\n"`},
		{"call bad params", "POST", "/v1/skills/test/echo/call", `{"msg":1}`, nil, 400, `"kind":"invalid"`},
		{"call not json", "POST", "/v1/skills/test/echo/call", `{`, nil, 400, `"kind":"invalid"`},
		{"call not object", "POST", "/v1/skills/test/echo/call", `[1]`, nil, 400, `"kind":"invalid"`},
		{"call unknown", "POST", "/v1/skills/test/nope/call", `{}`, nil, 404, `"kind":"not_found"`},
		{"call path traversal", "POST", "/v1/skills/../etc/call", `{}`, nil, 404, `"kind":"not_found"`},
		{"call too big", "POST", "/v1/skills/test/echo/call", big, nil, 413, `"kind":"limit"`},
		{"call wrong type", "POST", "/v1/skills/test/echo/call", `{}`, map[string]string{"Content-Type": "text/plain"}, 400, `want application/json`},
		{"call cross-origin", "POST", "/v1/skills/test/echo/call", `{}`, map[string]string{"Sec-Fetch-Site": "cross-site"}, 403, `"kind":"denied"`},
		{"wrong method", "GET", "/v1/skills/test/echo/call", "", nil, 404, `"kind":"not_found"`},
		{"unknown path", "GET", "/v2", "", nil, 404, `"kind":"not_found"`},
	})
}

// The schema endpoint serves exactly what `skillbox schema` prints.
func TestHTTPSchemaMatchesExport(t *testing.T) {
	s := newServer(t, server.Config{})
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	for _, f := range schema.Formats() {
		if f == schema.FormatOllama {
			continue
		}
		_, body := doHTTP(t, hs.URL, httpCase{method: "GET", path: "/v1/skills/text/word_stats/schema?format=" + f})
		var got map[string]any
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if got["name"] == nil && got["function"] == nil {
			t.Errorf("%s: %s", f, body)
		}
	}
}

func TestHTTPToken(t *testing.T) {
	s := newServer(t, server.Config{Token: "s3cret"})
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	auth := map[string]string{"Authorization": "Bearer s3cret"}
	runCases(t, hs.URL, []httpCase{
		{"health open", "GET", "/v1/health", "", nil, 200, `"ok":true`},
		{"no token", "GET", "/v1/skills", "", nil, 401, `"kind":"denied"`},
		{"wrong token", "GET", "/v1/skills", "", map[string]string{"Authorization": "Bearer nope"}, 401, `bearer token`},
		{"not bearer", "GET", "/v1/skills", "", map[string]string{"Authorization": "Basic czNjcmV0"}, 401, `bearer token`},
		{"token", "GET", "/v1/skills", "", auth, 200, `"skills"`},
		{"mcp no token", "POST", "/mcp", `{}`, nil, 401, `"kind":"denied"`},
		{"call with token", "POST", "/v1/skills/test/echo/call", `{}`, auth, 200, `"ok":true`},
	})
}

func TestExposure(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:1", true}, {"[::1]:1", true}, {"0.0.0.0:1", false}, {"[::]:1", false}, {"192.0.2.1:1", false},
	} {
		a, err := net.ResolveTCPAddr("tcp", tc.addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := server.IsLoopback(a); got != tc.want {
			t.Errorf("IsLoopback(%s) = %v", tc.addr, got)
		}
	}
	if _, err := server.New(nil, server.Config{Token: "a b"}); err == nil {
		t.Error("a token with a space was accepted")
	}
}

// When every call slot is taken, calls over the API and over MCP are
// answered 429, while other requests still pass.
func TestHTTPBusy(t *testing.T) {
	s := newServer(t, server.Config{MaxConcurrent: 1})
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	done := holdSlot(t, hs.URL, 1.5)
	runCases(t, hs.URL, []httpCase{
		{"call", "POST", "/v1/skills/test/echo/call", `{}`, nil, 429, `"kind":"limit"`},
		{"mcp call", "POST", "/mcp", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"test_echo"}}`, nil, 429, `"kind":"limit"`},
		{"list", "GET", "/v1/skills", "", nil, 200, `"skills"`},
	})
	if st := <-done; st != 200 {
		t.Errorf("the call holding the slot ended %d", st)
	}
	runCases(t, hs.URL, []httpCase{{"call after", "POST", "/v1/skills/test/echo/call", `{}`, nil, 200, `"ok":true`}})
}

// holdSlot starts a call of test/sleep that takes the server's one call
// slot for the given seconds, waits until its skill runs, and returns where
// the call's HTTP status arrives.
func holdSlot(t *testing.T, url string, seconds float64) <-chan int {
	t.Helper()
	pf := pidFile(t)
	done := make(chan int, 1)
	go func() {
		st, _ := doHTTP(t, url, httpCase{method: "POST", path: "/v1/skills/test/sleep/call", body: fmt.Sprintf(`{"seconds":%g,"pidfile":%q}`, seconds, pf)})
		done <- st
	}()
	waitPID(t, pf)
	return done
}

// serve runs s.Serve on a loopback port and returns its URL, a stop func
// and the channel Serve's error arrives on.
func serve(t *testing.T, s *server.Server) (string, context.CancelFunc, chan error) {
	ln, err := s.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ctx, ln) }()
	t.Cleanup(cancel)
	return "http://" + ln.Addr().String(), cancel, errc
}

func TestGracefulShutdown(t *testing.T) {
	t.Run("finish", func(t *testing.T) {
		s := newServer(t, server.Config{ShutdownTimeout: 10 * time.Second})
		url, stop, errc := serve(t, s)
		pf := pidFile(t)
		got := make(chan string, 1)
		go func() {
			_, body := doHTTP(t, url, httpCase{method: "POST", path: "/v1/skills/test/sleep/call", body: `{"seconds":0.5,"pidfile":"` + pf + `"}`})
			got <- body
		}()
		waitPID(t, pf)
		stop()
		if body := <-got; !strings.Contains(body, `"ok":true`) {
			t.Errorf("in-flight call: %s", body)
		}
		if err := <-errc; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if _, err := http.Get(url + "/v1/health"); err == nil {
			t.Error("still answering after shutdown")
		}
	})
	// A call whose body is still arriving holds no slot, but a shutdown
	// waits for it as for a call in flight: it runs once its body is in.
	t.Run("body being read", func(t *testing.T) {
		s := newServer(t, server.Config{ShutdownTimeout: hangGuard})
		url, stop, errc := serve(t, s)
		body := `{"msg":"hi"}`
		c := rawRequest(t, hostOf(url), fmt.Sprintf("POST /v1/skills/test/echo/call HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n", len(body)))
		br := bufio.NewReader(c)
		if line, err := br.ReadString('\n'); err != nil || !strings.Contains(line, "100 Continue") {
			t.Fatalf("want 100 Continue, got %q %v", line, err)
		}
		br.ReadString('\n') // the blank line that ends it
		stop()
		// Past the second a shutdown gives answers to go out once no call
		// is in flight: the body must still be waited for.
		time.Sleep(1500 * time.Millisecond)
		io.WriteString(c, body)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("no answer to the call whose body came during the shutdown: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), `"ok":true`) {
			t.Errorf("the call whose body came during the shutdown: %d %s", resp.StatusCode, b)
		}
		if err := <-errc; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		s := newServer(t, server.Config{ShutdownTimeout: 200 * time.Millisecond})
		url, stop, errc := serve(t, s)
		pf := pidFile(t)
		got := make(chan string, 1)
		go func() {
			_, body := doHTTP(t, url, httpCase{method: "POST", path: "/v1/skills/test/sleep/call", body: `{"seconds":60,"pidfile":"` + pf + `"}`})
			got <- body
		}()
		pid := waitPID(t, pf)
		start := time.Now()
		stop()
		if body := <-got; !strings.Contains(body, `"kind":"unavailable"`) || !strings.Contains(body, "call cancelled") {
			t.Errorf("cancelled call: %s", body)
		}
		if err := <-errc; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("shutdown took %v", d)
		}
		waitGone(t, pid)
	})
}

var _ = bytes.NewReader

// A failed call's log line quotes at most 1 KiB of its error: the error
// holds the skill's exception message, 64 KiB as the harness cuts it and
// about the frame cap (1 MiB) from a skill that writes its own error
// frame, so each failed call of a request of a few bytes wrote that much
// to the server's log.
func TestFailedCallLogLineIsBounded(t *testing.T) {
	var logs logBuffer
	s := newServer(t, server.Config{Logger: logs.logger()})
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	code, body := doHTTP(t, hs.URL, httpCase{method: "POST", path: "/v1/skills/test/raises/call", body: `{"long":50000}`})
	if code != 422 || !strings.Contains(body, strings.Repeat("m", 50000)) {
		t.Fatalf("%d %.200s: want 422 with the whole message", code, body)
	}
	logs.wait(t, "outcome=error")
	logs.mu.Lock()
	defer logs.mu.Unlock()
	for line := range strings.SplitSeq(logs.buf.String(), "\n") {
		if strings.Contains(line, "test/raises") && len(line) > 2<<10 {
			t.Errorf("a log line of %d bytes for one failed call", len(line))
		}
	}
	if !strings.Contains(logs.buf.String(), "more bytes]") {
		t.Errorf("the log does not say the error was cut:\n%.500s", logs.buf.String())
	}
}
