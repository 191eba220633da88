package server_test

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/internal/server"
)

// A client that never reads its answer holds no call slot: with one slot,
// while an answer of 8 MiB sits unread (more than the loopback socket
// buffers take), another call runs.
func TestHTTPUnreadAnswerHoldsNoSlot(t *testing.T) {
	s := newServer(t, server.Config{MaxConcurrent: 1})
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	c, err := net.Dial("tcp", hostOf(hs.URL))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := `{"n":8388608}`
	if _, err := c.Write([]byte("POST /v1/skills/test/big/call HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)); err != nil {
		t.Fatal(err)
	}
	// The big call takes the slot while it runs (429 for the echo), then
	// frees it although its answer is not read.
	deadline := time.Now().Add(hangGuard)
	for {
		status, b := doHTTP(t, hs.URL, httpCase{method: "POST", path: "/v1/skills/test/echo/call", body: `{"msg":"hi"}`})
		if status == 200 && strings.Contains(b, `"ok":true`) {
			break
		}
		if status != 429 {
			t.Fatalf("echo answered %d %s", status, b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the call slot was still taken after %v while an answer sat unread", hangGuard)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The unread answer is still there to read, whole.
	c.SetReadDeadline(time.Now().Add(hangGuard))
	status, got := readResponse(t, c)
	if status != 200 || !strings.Contains(got, `"ok":true`) || strings.Count(got, "x") < 8388608 {
		t.Errorf("the big answer: %d, %d bytes", status, len(got))
	}
}

// Nor does an MCP client: the tool call holds the slot, not its POST, so
// the slot is free once the call is done although the SDK's answer (8 MiB)
// sits unread. Before, the POST held the slot until its connection was cut
// off (--body-read-timeout + 8MiB at MinBodyRate, over two minutes).
func TestMCPUnreadAnswerHoldsNoSlot(t *testing.T) {
	s := newServer(t, server.Config{MaxConcurrent: 1})
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	sid := mcpReady(t, hs.URL)
	body := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"test_big","arguments":{"n":8388608}}}`
	c := rawRequest(t, hostOf(hs.URL), "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"+
		"Mcp-Session-Id: "+sid+"\r\nMCP-Protocol-Version: 2025-06-18\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body)
	defer c.Close()
	deadline := time.Now().Add(hangGuard)
	for {
		resp, got := mcpPost(t, hs.URL, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"test_echo","arguments":{"msg":"hi"}}}`, sid)
		if resp.StatusCode == http.StatusOK && strings.Contains(got, "hi") {
			break
		}
		if resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("echo answered %d %.200s", resp.StatusCode, got)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the call slot was still taken after %v while an MCP answer sat unread", hangGuard)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// deadlineWriter is a ResponseWriter on a connection with a write
// deadline (http.ResponseController finds SetWriteDeadline and
// FlushError). stalled, it is a client that reads nothing: a write waits
// for the deadline and fails as net/http's does.
type deadlineWriter struct {
	h         http.Header
	buf       bytes.Buffer
	stalled   bool
	deadlines []time.Time
}

func (d *deadlineWriter) Header() http.Header { return d.h }
func (d *deadlineWriter) WriteHeader(int)     {}

func (d *deadlineWriter) SetWriteDeadline(t time.Time) error {
	d.deadlines = append(d.deadlines, t)
	return nil
}

func (d *deadlineWriter) Write(b []byte) (int, error) {
	if !d.stalled {
		return d.buf.Write(b)
	}
	if n := len(d.deadlines); n > 0 && !d.deadlines[n-1].IsZero() {
		time.Sleep(time.Until(d.deadlines[n-1]))
		return 0, os.ErrDeadlineExceeded
	}
	select {} // no deadline: the write never returns, as on a real socket
}

func (d *deadlineWriter) FlushError() error {
	if d.stalled {
		return os.ErrDeadlineExceeded
	}
	return nil
}

// A call's answer must leave at MinBodyRate after BodyReadTimeout's grace:
// its write deadline is set from its size, lifted once the answer is out
// (it would outlive the request on a kept-alive connection), and a client
// that reads nothing is cut off when it passes.
func TestHTTPAnswerDeadline(t *testing.T) {
	const grace = 300 * time.Millisecond
	const n = 128 << 10
	s := newServer(t, server.Config{MaxConcurrent: 1, BodyReadTimeout: grace})
	h := s.Handler()
	call := func(w *deadlineWriter) (time.Time, time.Time) {
		req := httptest.NewRequest("POST", "/v1/skills/test/big/call", strings.NewReader(`{"n":`+strconv.Itoa(n)+`}`))
		req.Header.Set("Content-Type", "application/json")
		done := make(chan struct{})
		start := time.Now()
		go func() { defer close(done); h.ServeHTTP(w, req) }()
		select {
		case <-done:
		case <-time.After(hangGuard):
			t.Fatalf("the handler did not return within %v", hangGuard)
		}
		return start, time.Now()
	}
	size := n + 2 // the JSON string's quotes
	want := grace + time.Duration(float64(size)/server.MinBodyRate*float64(time.Second))

	w := &deadlineWriter{h: http.Header{}}
	start, end := call(w)
	if got := w.buf.String(); !strings.Contains(got, `"ok":true`) || !strings.Contains(got, strings.Repeat("x", n)) {
		t.Fatalf("answer: %d bytes: %.100s...%s", len(got), got, got[max(0, len(got)-300):])
	}
	if len(w.deadlines) != 2 || !w.deadlines[1].IsZero() {
		t.Fatalf("write deadlines %v: want one set, then lifted", w.deadlines)
	}
	if d := w.deadlines[0]; d.Before(start.Add(want)) || d.After(end.Add(want)) {
		t.Errorf("write deadline %v after the call's start; want %v (grace + size at MinBodyRate)", d.Sub(start), want)
	}

	// A client that reads nothing: the handler returns once the deadline
	// passes, the deadline still set (net/http then closes the
	// connection), and the slot is free for the next call.
	w = &deadlineWriter{h: http.Header{}, stalled: true}
	call(w)
	if len(w.deadlines) != 1 {
		t.Errorf("write deadlines %v: want one, kept", w.deadlines)
	}
	w = &deadlineWriter{h: http.Header{}}
	call(w)
	if !strings.Contains(w.buf.String(), `"ok":true`) {
		t.Errorf("the call after a stalled client: %.200s", w.buf.String())
	}
}

// An MCP client that never reads the answer to its tools/call is cut off
// like a /v1/ one: the SDK's writes carry a deadline of BodyReadTimeout
// plus the unflushed bytes at MinBodyRate, so the POST returns and its call
// slot is free for the next call (there is one).
func TestMCPUnreadAnswerCutOff(t *testing.T) {
	const grace = 300 * time.Millisecond
	s := newServer(t, server.Config{MaxConcurrent: 1, BodyReadTimeout: grace})
	h := s.Handler()
	hs := httptest.NewServer(h)
	defer hs.Close()
	sid := mcpSession(t, hs.URL)
	call := func(w http.ResponseWriter, body string) {
		req := httptest.NewRequest("POST", "/mcp", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Session-Id", sid)
		req.Header.Set("MCP-Protocol-Version", "2025-06-18")
		done := make(chan struct{})
		go func() { defer close(done); h.ServeHTTP(w, req) }()
		select {
		case <-done:
		case <-time.After(hangGuard):
			t.Fatalf("the MCP POST did not return within %v while its answer went unread", hangGuard)
		}
	}
	big := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"test_big","arguments":{"n":65536}}}`

	w := &deadlineWriter{h: http.Header{}}
	call(w, big)
	if !strings.Contains(w.buf.String(), strings.Repeat("x", 65536)) {
		t.Fatalf("the answer read: %.200s", w.buf.String())
	}
	if n := len(w.deadlines); n < 2 || !w.deadlines[n-1].IsZero() || w.deadlines[n-2].IsZero() {
		t.Fatalf("write deadlines %v: want set for the writes, then lifted", w.deadlines)
	}

	stalled := &deadlineWriter{h: http.Header{}, stalled: true}
	call(stalled, big)
	if n := len(stalled.deadlines); n == 0 || stalled.deadlines[n-1].IsZero() {
		t.Errorf("write deadlines %v: want the last one kept (net/http closes the connection)", stalled.deadlines)
	}
	resp, body := mcpPost(t, hs.URL, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"test_echo","arguments":{"msg":"hi"}}}`, sid)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "hi") || strings.Contains(body, `"isError":true`) {
		t.Fatalf("the next call: %d %s", resp.StatusCode, body)
	}
}
