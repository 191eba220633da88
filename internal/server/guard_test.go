package server_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/internal/server"
)

// hangGuard bounds every wait on a raw connection: a refusal that never
// comes fails the test instead of hanging it.
const hangGuard = 20 * time.Second

// rawRequest opens a connection to addr (host:port) and writes head, a
// request's line and headers without the blank line that ends them.
func rawRequest(t *testing.T, addr, head string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(hangGuard))
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	return c
}

// readResponse reads one response from c.
func readResponse(t *testing.T, c net.Conn) (int, string) {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitClosed waits for the server to close c, reading and discarding.
func waitClosed(t *testing.T, c net.Conn) {
	t.Helper()
	_, err := io.Copy(io.Discard, c) // EOF, or a reset: both close
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server did not close the connection within %v", hangGuard)
	}
}

func hostOf(url string) string { return strings.TrimPrefix(url, "http://") }

// mcpPost POSTs body to url's /mcp, in the session sid if not "", and
// returns the response with its body read.
func mcpPost(t *testing.T, url, body, sid string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url+"/mcp", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if sid != "" {
		req.Header.Set("Mcp-Session-Id", sid)
		req.Header.Set("MCP-Protocol-Version", "2025-06-18")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

const (
	mcpInit      = `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
	mcpToolsList = `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`
)

// mcpSession opens an MCP session on url's /mcp and returns its id.
func mcpSession(t *testing.T, url string) string {
	t.Helper()
	resp, body := mcpPost(t, url, mcpInit, "")
	sid := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != http.StatusOK || sid == "" {
		t.Fatalf("initialize: %d, session %q: %s", resp.StatusCode, sid, body)
	}
	return sid
}

// A JSON-RPC batch on /mcp is refused with -32600 whatever protocol
// version the request claims, before any of its calls runs.
func TestMCPBatchRefused(t *testing.T) {
	s := newServer(t, server.Config{})
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	post := func(body string, hdr map[string]string) *http.Response {
		req, _ := http.NewRequest("POST", hs.URL+"/mcp", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	// A session on the last version that had batches, as an attacker
	// would open one.
	resp := post(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`, nil)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	sid := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != 200 || sid == "" {
		t.Fatalf("initialize: %d, session %q", resp.StatusCode, sid)
	}
	resp = post(`{"jsonrpc":"2.0","method":"notifications/initialized"}`, map[string]string{"Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-03-26"})
	resp.Body.Close()

	for _, version := range []string{"", "2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2099-01-01"} {
		for _, lead := range []string{"", " \r\n\t"} {
			t.Run(fmt.Sprintf("version=%q lead=%q", version, lead), func(t *testing.T) {
				pf := pidFile(t)
				call := func(id int) string {
					return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"test_sleep","arguments":{"seconds":0,"pidfile":%q}}}`, id, pf)
				}
				hdr := map[string]string{"Mcp-Session-Id": sid}
				if version != "" {
					hdr["MCP-Protocol-Version"] = version
				}
				resp := post(lead+"["+call(1)+","+call(2)+"]", hdr)
				defer resp.Body.Close()
				var got struct {
					JSONRPC string          `json:"jsonrpc"`
					ID      json.RawMessage `json:"id"`
					Error   struct {
						Code    int    `json:"code"`
						Message string `json:"message"`
					} `json:"error"`
				}
				b, _ := io.ReadAll(resp.Body)
				if err := json.Unmarshal(b, &got); err != nil || resp.StatusCode != 400 || got.Error.Code != -32600 ||
					string(got.ID) != "null" || got.JSONRPC != "2.0" || !strings.Contains(got.Error.Message, "batch") {
					t.Errorf("batch answered %d %s; want 400 and a JSON-RPC error -32600 with id null", resp.StatusCode, b)
				}
				if _, err := os.Stat(pf); err == nil {
					t.Error("a call of the refused batch ran")
				}
			})
		}
	}
	// A single message still works in that session.
	resp = post(`{"jsonrpc":"2.0","id":9,"method":"tools/list"}`, map[string]string{"Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-03-26"})
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "test_echo") {
		t.Errorf("tools/list after the refusals: %d %s", resp.StatusCode, b)
	}
}

// While every call slot is taken, a call's body is not read: the answer
// is 429 although the body never comes. On /mcp only small messages are
// read then (they may be cancellations), so a large one is refused unread.
func TestHTTPBodyNotReadWhileBusy(t *testing.T) {
	s := newServer(t, server.Config{MaxConcurrent: 1})
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	done := holdSlot(t, hs.URL, 3)
	for _, tc := range []struct{ name, path, length string }{
		{"api call", "/v1/skills/test/echo/call", "1000"},
		{"mcp message over 64KiB", "/mcp", "1000000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := rawRequest(t, hostOf(hs.URL), "POST "+tc.path+" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: "+tc.length+"\r\n\r\n")
			status, body := readResponse(t, c)
			if status != 429 || !strings.Contains(body, `"kind":"limit"`) || !strings.Contains(body, "server busy") {
				t.Errorf("answer %d %s; want 429 busy before the body is sent", status, body)
			}
		})
	}
	// A small MCP message that is no call passes while busy: here an
	// unknown session, which the SDK itself refuses.
	status, body := doHTTP(t, hs.URL, httpCase{method: "POST", path: "/mcp", body: `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}`,
		header: map[string]string{"Accept": "application/json, text/event-stream", "Mcp-Session-Id": "nope"}})
	if status == 429 {
		t.Errorf("a small notification was refused while busy: %d %s", status, body)
	}
	if st := <-done; st != 200 {
		t.Errorf("the call holding the slot ended %d", st)
	}
}

// A body that is slow to arrive holds no call slot: with one slot, while
// a call's body stalls (the server has started reading it: it sent 100
// Continue), another call runs, on the API and over MCP.
func TestHTTPSlowBodyHoldsNoSlot(t *testing.T) {
	for _, path := range []string{"/v1/skills/test/echo/call", "/mcp"} {
		t.Run(path, func(t *testing.T) {
			s := newServer(t, server.Config{MaxConcurrent: 1, BodyReadTimeout: time.Minute})
			hs := httptest.NewServer(s.Handler())
			defer hs.Close()
			sid := mcpSession(t, hs.URL)
			mcpPost(t, hs.URL, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, sid)
			c := rawRequest(t, hostOf(hs.URL), "POST "+path+" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"+
				"Mcp-Session-Id: "+sid+"\r\nMCP-Protocol-Version: 2025-06-18\r\nExpect: 100-continue\r\nContent-Length: 1000\r\n\r\n")
			defer c.Close()
			// The server asks for the body once a handler reads it.
			br := bufio.NewReader(c)
			if line, err := br.ReadString('\n'); err != nil || !strings.Contains(line, "100 Continue") {
				t.Fatalf("want 100 Continue, got %q %v", line, err)
			}
			io.WriteString(c, `{"msg":`)
			status, body := doHTTP(t, hs.URL, httpCase{method: "POST", path: "/v1/skills/test/echo/call", body: `{"msg":"hi"}`})
			if status != 200 || !strings.Contains(body, `"ok":true`) {
				t.Errorf("API call while a body stalls: %d %s", status, body)
			}
			resp, body := mcpPost(t, hs.URL, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"test_echo","arguments":{"msg":"hi"}}}`, sid)
			if resp.StatusCode != 200 || !strings.Contains(body, `\"msg\":\"hi\"`) || strings.Contains(body, `"isError":true`) {
				t.Errorf("MCP call while a body stalls: %d %s", resp.StatusCode, body)
			}
		})
	}
}

// A request body that stalls, or trickles in slower than MinBodyRate
// allows, is answered 408 and its connection closed.
func TestHTTPBodyTrickleCut(t *testing.T) {
	s := newServer(t, server.Config{BodyReadTimeout: 200 * time.Millisecond})
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	for _, path := range []string{"/v1/skills/test/echo/call", "/mcp"} {
		for _, mode := range []string{"stall", "trickle"} {
			t.Run(path+" "+mode, func(t *testing.T) {
				c := rawRequest(t, hostOf(hs.URL), "POST "+path+" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: 100000\r\n\r\n{")
				if mode == "trickle" {
					// One byte every 50ms: never a pause of 200ms, but far
					// below 64KiB/s.
					go func() {
						for {
							time.Sleep(50 * time.Millisecond)
							if _, err := c.Write([]byte(" ")); err != nil {
								return
							}
						}
					}()
				}
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				var ne net.Error
				switch {
				case errors.As(err, &ne) && ne.Timeout():
					t.Fatalf("no answer within %v: the body was waited for", hangGuard)
				case err != nil:
					// The server closed with trickled bytes unread, which
					// resets the connection: on a loaded machine that can
					// come before this reads the answer. Cut all the same.
					t.Logf("connection reset before the answer was read: %v", err)
					return
				}
				b, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != 408 || !strings.Contains(string(b), `"kind":"timeout"`) || !strings.Contains(string(b), "--body-read-timeout") {
					t.Errorf("answer %d %s; want 408 timeout", resp.StatusCode, b)
				}
				waitClosed(t, c)
			})
		}
	}
	// A body that arrives in time passes.
	runCases(t, hs.URL, []httpCase{{"prompt body", "POST", "/v1/skills/test/echo/call", `{"msg":"hi"}`, nil, 200, `"ok":true`}})
}

// Headers that trickle in are cut at ReadHeaderTimeout.
func TestServeHeaderTrickleCut(t *testing.T) {
	s := newServer(t, server.Config{ReadHeaderTimeout: 200 * time.Millisecond})
	url, _, _ := serve(t, s)
	c := rawRequest(t, hostOf(url), "GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
	go func() {
		for {
			time.Sleep(50 * time.Millisecond)
			if _, err := c.Write([]byte("X-Slow: 1\r\n")); err != nil {
				return
			}
		}
	}()
	// Well under the old fixed 10s, well over 200ms: a guard, not a speed.
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	// EOF or a reset (the server closed with our bytes unread) both close.
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("connection not closed while its headers trickled: %v", err)
	}
}

// Serve accepts at most MaxConns connections; the next waits until one
// closes.
func TestServeMaxConns(t *testing.T) {
	s := newServer(t, server.Config{MaxConns: 2, ReadHeaderTimeout: time.Minute})
	url, _, _ := serve(t, s)
	get := "GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
	var held []net.Conn
	for range 2 {
		c := rawRequest(t, hostOf(url), get)
		if st, body := readResponse(t, c); st != 200 {
			t.Fatalf("health: %d %s", st, body)
		}
		held = append(held, c) // kept alive, so still open
	}
	c := rawRequest(t, hostOf(url), get)
	br := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("a third connection was served while two were open")
	}
	held[0].Close()
	c.SetReadDeadline(time.Now().Add(hangGuard))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("the third connection was not served after one closed: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("health on the third connection: %d", resp.StatusCode)
	}
}

// The bodies being read share MaxBodyMemory: when stalled bodies hold it,
// another body is refused 429 unread; once they go, calls pass again.
func TestHTTPBodyBudget(t *testing.T) {
	s := newServer(t, server.Config{MaxBodyBytes: 1 << 10, MaxBodyMemory: 4 << 10, MaxConcurrent: 16, BodyReadTimeout: time.Minute})
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	stall := func() net.Conn {
		return rawRequest(t, hostOf(hs.URL), "POST /v1/skills/test/echo/call HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1024\r\n\r\n{")
	}
	var stalled []net.Conn
	for range 4 {
		stalled = append(stalled, stall())
	}
	call := httpCase{method: "POST", path: "/v1/skills/test/echo/call", body: `{"msg":"hi"}`}
	var status int
	var body string
	for deadline := time.Now().Add(hangGuard); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if status, body = doHTTP(t, hs.URL, call); status == 429 {
			break
		}
		// A stalled request the server reached while a probe held part of
		// the budget was refused (429) instead of held: stall it again.
		for i, c := range stalled {
			c.SetReadDeadline(time.Now().Add(time.Millisecond))
			var b [1]byte
			if n, _ := c.Read(b[:]); n > 0 {
				c.Close()
				stalled[i] = stall()
			} else {
				c.SetReadDeadline(time.Now().Add(hangGuard))
			}
		}
	}
	if status != 429 || !strings.Contains(body, "--max-body-memory") || !strings.Contains(body, `"kind":"limit"`) {
		t.Fatalf("with the budget held by stalled bodies a call got %d %s; want 429 naming --max-body-memory", status, body)
	}
	for _, c := range stalled {
		c.Close()
	}
	for deadline := time.Now().Add(hangGuard); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if status, body = doHTTP(t, hs.URL, call); status == 200 {
			break
		}
	}
	if status != 200 {
		t.Errorf("after the stalled bodies went a call got %d %s", status, body)
	}
	if _, err := server.New(nil, server.Config{MaxBodyBytes: 1 << 20, MaxBodyMemory: 1 << 20}); err == nil {
		t.Error("a body budget under two bodies was accepted")
	}
}

// On a loopback listener every endpoint refuses a Host or Origin that is
// not a loopback name, the listener's address or an allowed name.
func TestHTTPHostCheck(t *testing.T) {
	s := newServer(t, server.Config{AllowHosts: []string{"Agent.Internal"}})
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	_, port, _ := net.SplitHostPort(hostOf(hs.URL))
	mcpInit := `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
	type req struct{ method, path, body string }
	endpoints := []req{
		{"GET", "/v1/health", ""},
		{"GET", "/v1/skills", ""},
		{"GET", "/v1/skills/test/echo/schema", ""},
		{"POST", "/v1/skills/test/echo/call", `{"msg":"hi"}`},
		{"POST", "/mcp", mcpInit},
	}
	do := func(r req, host, origin string) (int, string) {
		t.Helper()
		hr, _ := http.NewRequest(r.method, hs.URL+r.path, strings.NewReader(r.body))
		hr.Host = host
		if r.method == "POST" {
			hr.Header.Set("Content-Type", "application/json")
			hr.Header.Set("Accept", "application/json, text/event-stream")
		}
		if origin != "" {
			hr.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(hr)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, r := range endpoints {
		for _, tc := range []struct {
			host, origin string
			ok           bool
			want         string
		}{
			{"evil.example:" + port, "", false, "--allow-host evil.example"},
			{"evil.example", "", false, "--allow-host evil.example"},
			{"127.0.0.2:" + port, "", false, "--allow-host 127.0.0.2"},
			{"localhost.evil.example:" + port, "", false, "--allow-host localhost.evil.example"},
			{"localhost:" + port, "http://evil.example:" + port, false, `Origin \"http://evil.example:` + port},
			{"localhost:" + port, "null", false, "--allow-host NAME"},
			{"localhost:" + port, "", true, ""},
			{"LOCALHOST", "", true, ""},
			{"127.0.0.1:" + port, "", true, ""},
			{"127.0.0.1", "", true, ""},
			{"[::1]:" + port, "", true, ""},
			{"localhost:" + port, "http://localhost:" + port, true, ""},
			{"agent.internal:" + port, "", true, ""},
			{"agent.internal:" + port, "http://agent.internal:" + port, true, ""},
			{"Agent.Internal.:" + port, "", true, ""},
			{"evil.example.:" + port, "", false, "--allow-host evil.example"},
		} {
			t.Run(r.method+" "+r.path+" host="+tc.host+" origin="+tc.origin, func(t *testing.T) {
				status, body := do(r, tc.host, tc.origin)
				if tc.ok {
					if status == 403 || status == 421 {
						t.Errorf("refused: %d %s", status, body)
					}
					return
				}
				if status != 403 || !strings.Contains(body, `"kind":"denied"`) || !strings.Contains(body, tc.want) || !strings.Contains(body, "DNS rebinding") {
					t.Errorf("answer %d %s; want 403 denied naming %s", status, body, tc.want)
				}
			})
		}
	}
	for _, bad := range []string{"", "evil.example:80", "http://evil.example", "*", "a b", "a..b", "-a.test", "127.1", "fe80::1%eth0", "[::1"} {
		if _, err := server.New(nil, server.Config{AllowHosts: []string{bad}}); err == nil {
			t.Errorf("allowed host %q was accepted", bad)
		}
	}
}

// Live MCP sessions over HTTP are bounded: an initialize beyond MaxSessions
// is answered 503 naming the flag, the open sessions keep working, and
// ending a session makes room.
func TestMCPSessionsBounded(t *testing.T) {
	s := newServer(t, server.Config{MaxSessions: 2})
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	sids := []string{mcpSession(t, hs.URL), mcpSession(t, hs.URL)}
	resp, body := mcpPost(t, hs.URL, mcpInit, "")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "2 MCP sessions are open") || !strings.Contains(body, "--max-sessions") {
		t.Fatalf("third session: %d %s", resp.StatusCode, body)
	}
	// Messages of open sessions still go through.
	for _, sid := range sids {
		if resp, body := mcpPost(t, hs.URL, mcpToolsList, sid); resp.StatusCode != http.StatusOK || !strings.Contains(body, "test_echo") {
			t.Errorf("tools/list on an open session: %d %s", resp.StatusCode, body)
		}
	}
	del, _ := http.NewRequest("DELETE", hs.URL+"/mcp", nil)
	del.Header.Set("Mcp-Session-Id", sids[1])
	del.Header.Set("MCP-Protocol-Version", "2025-06-18")
	if resp, err := http.DefaultClient.Do(del); err != nil || resp.StatusCode >= 300 {
		t.Fatalf("DELETE: %v %v", resp, err)
	}
	deadline := time.Now().Add(hangGuard)
	for {
		resp, _ := mcpPost(t, hs.URL, mcpInit, "")
		if resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no room after ending a session: %d", resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// An MCP session with no request for SessionIdleTimeout is ended: its id
// is then unknown (404), and it no longer counts against MaxSessions.
func TestMCPSessionIdleTimeout(t *testing.T) {
	const idle = time.Second
	s := newServer(t, server.Config{MaxSessions: 1, SessionIdleTimeout: idle})
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	sid := mcpSession(t, hs.URL)
	// A new session is let in only once the idle one is gone.
	deadline := time.Now().Add(hangGuard)
	var next string
	var opened time.Time
	for {
		resp, body := mcpPost(t, hs.URL, mcpInit, "")
		if resp.StatusCode == http.StatusOK {
			next, opened = resp.Header.Get("Mcp-Session-Id"), time.Now()
			break
		}
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("initialize while the first session is open: %d %s", resp.StatusCode, body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the idle session was not ended within %v", hangGuard)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if resp, body := mcpPost(t, hs.URL, mcpToolsList, sid); resp.StatusCode != http.StatusNotFound {
		t.Errorf("the idle session after its timeout: %d %s", resp.StatusCode, body)
	}
	// The new session works (unless this machine took longer than its
	// idle timeout to ask).
	resp, body := mcpPost(t, hs.URL, mcpToolsList, next)
	if (resp.StatusCode != http.StatusOK || !strings.Contains(body, "test_echo")) && time.Since(opened) < idle {
		t.Errorf("the new session: %d %s", resp.StatusCode, body)
	}
}

// The call slots and the session cap hold for however a message spells
// its method: the middleware reads the method as the SDK does (names
// matched exactly, escapes undone), and counts a message whose method it
// cannot be sure of as a call or a new session. Before, "tools\/call",
// "\u0074ools/call" or a second "Method" member ran calls past
// MaxConcurrent, and "initiali\u007ae" opened sessions past MaxSessions.
func TestMCPLimitsHoldForEverySpelling(t *testing.T) {
	s := newServer(t, server.Config{MaxConcurrent: 1, MaxSessions: 2})
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	sid := mcpSession(t, hs.URL)
	done := holdSlot(t, hs.URL, 3)
	for _, method := range []string{`"method":"tools\/call"`, `"method":"\u0074ools/call"`, `"method":"tools/call","Method":"x"`, `"Method":"x","method":"tools/call"`, `"method":"tools/call","method":"x"`} {
		body := `{"jsonrpc":"2.0","id":5,` + method + `,"params":{"name":"test_echo","arguments":{"msg":"hi"}}}`
		if resp, got := mcpPost(t, hs.URL, body, sid); resp.StatusCode != http.StatusTooManyRequests {
			t.Errorf("%s while the only slot is taken: %d %.200s; want 429", method, resp.StatusCode, got)
		}
	}
	if st := <-done; st != 200 {
		t.Errorf("the call holding the slot ended %d", st)
	}
	mcpSession(t, hs.URL) // the second and last
	for _, method := range []string{`"method":"initiali\u007ae"`, `"method":"initialize","Method":"x"`} {
		body := strings.Replace(mcpInit, `"method":"initialize"`, method, 1)
		if resp, got := mcpPost(t, hs.URL, body, ""); resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("%s past MaxSessions: %d %.200s; want 503", method, resp.StatusCode, got)
		}
	}
}
