package egress

import (
	"bufio"
	cryptotls "crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// hangGuard bounds how long a test waits for the proxy to cut something;
// it is no measure of speed.
const hangGuard = 20 * time.Second

// closedWithin reports whether the proxy closes c (after answering
// whatever it answers) before the hang guard.
func closedWithin(t *testing.T, c net.Conn) bool {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(hangGuard))
	_, err := io.Copy(io.Discard, c)
	return err == nil || !isTimeout(err)
}

func TestStalledConnectionsCut(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/unread" {
			io.Copy(io.Discard, r.Body)
		}
		io.WriteString(w, "ok")
	}))
	defer ts.Close()
	tls := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer tls.Close()
	port := portOf(t, ts)
	h := start(t, Config{
		Allow:         rules(t, "api.test"),
		Resolve:       map[string][]netip.Addr{"api.test": {loop4}},
		HeaderTimeout: 300 * time.Millisecond,
		IdleTimeout:   300 * time.Millisecond,
		StallTimeout:  300 * time.Millisecond,
	})
	dial := func(t *testing.T, prefix string) net.Conn {
		c, err := net.Dial("tcp", h.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		io.WriteString(c, prefix)
		return c
	}
	t.Run("header", func(t *testing.T) {
		c := dial(t, "GET http://api.test/ HTTP/1.1\r\nHost: api")
		if !closedWithin(t, c) {
			t.Fatal("a stalled request header was not cut")
		}
	})
	// The host reads the body as it comes, or answers without it (the
	// proxy's server then reads the rest itself).
	for _, path := range []string{"/", "/unread"} {
		t.Run("body"+path, func(t *testing.T) {
			c := dial(t, fmt.Sprintf("POST http://api.test:%d%s HTTP/1.1\r\nHost: api.test\r\nContent-Length: 1000\r\n\r\nfirst bytes", port, path))
			if !closedWithin(t, c) {
				t.Fatal("a stalled request body was not cut")
			}
		})
	}
	ev := h.rec.wait(t, func(e Event) bool { return strings.Contains(e.Reason, "no progress") })
	if ev.Decision != DecisionLimit || ev.Method != "POST" {
		t.Fatalf("event %+v", ev)
	}
	t.Run("idle", func(t *testing.T) {
		c := dial(t, "")
		if !closedWithin(t, c) {
			t.Fatal("an idle client connection was not closed")
		}
	})
	t.Run("tunnel", func(t *testing.T) {
		c := dial(t, fmt.Sprintf("CONNECT api.test:%d HTTP/1.1\r\nHost: api.test\r\n\r\n", portOf(t, tls)))
		br := bufio.NewReader(c)
		if res, err := http.ReadResponse(br, nil); err != nil || res.StatusCode != 200 {
			t.Fatalf("CONNECT: %v %v", res, err)
		}
		if !closedWithin(t, c) {
			t.Fatal("a tunnel that sent nothing was not closed")
		}
	})
	t.Run("tunnel after handshake", func(t *testing.T) {
		c := dial(t, fmt.Sprintf("CONNECT api.test:%d HTTP/1.1\r\nHost: api.test\r\n\r\n", portOf(t, tls)))
		br := bufio.NewReader(c)
		if res, err := http.ReadResponse(br, nil); err != nil || res.StatusCode != 200 {
			t.Fatalf("CONNECT: %v %v", res, err)
		}
		tc := cryptotls.Client(c, &cryptotls.Config{ServerName: "api.test", InsecureSkipVerify: true})
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		if !closedWithin(t, c) {
			t.Fatal("an idle tunnel was not closed")
		}
	})
}

// TestSlowTransfersNotCut checks that the deadlines are progress
// deadlines: an upload and a download each lasting several times
// StallTimeout, that keep moving, succeed.
func TestSlowTransfersNotCut(t *testing.T) {
	const pieces, gap = 40, 20 * time.Millisecond // 0.8 s in all, each gap well under the 300 ms stall
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		if r.Method == "GET" {
			for range pieces {
				io.WriteString(w, ".")
				w.(http.Flusher).Flush()
				time.Sleep(gap)
			}
			return
		}
		fmt.Fprint(w, n)
	}))
	defer ts.Close()
	h := start(t, Config{
		Allow:        rules(t, "api.test"),
		Resolve:      map[string][]netip.Addr{"api.test": {loop4}},
		IdleTimeout:  300 * time.Millisecond,
		StallTimeout: 300 * time.Millisecond,
	})
	u := fmt.Sprintf("http://api.test:%d/", portOf(t, ts))
	pr, pw := io.Pipe()
	go func() {
		for range pieces {
			pw.Write([]byte("x"))
			time.Sleep(gap)
		}
		pw.Close()
	}()
	res, err := h.client(nil).Post(u, "application/octet-stream", pr)
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(res); body != fmt.Sprint(pieces) {
		t.Fatalf("slow upload: %d %q", res.StatusCode, body)
	}
	res.Body.Close()
	if code, body, _ := get(t, h.client(nil), u); code != 200 || body != strings.Repeat(".", pieces) {
		t.Fatalf("slow download: %d %q", code, body)
	}
}

func TestClientConnLimit(t *testing.T) {
	h := start(t, Config{Allow: rules(t, "api.test"), MaxClientConns: 2})
	for range 2 {
		c, err := net.Dial("tcp", h.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(hangGuard))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(body), "client connection limit") {
		t.Fatalf("third connection: %d %q", res.StatusCode, body)
	}
	ev := h.rec.wait(t, func(e Event) bool { return e.Decision == DecisionLimit })
	if !strings.Contains(ev.Reason, "(2 connections at once)") {
		t.Fatalf("event %+v", ev)
	}
	// Its audit record says what was refused, not an empty destination
	// ("limit  :0"): no request was read, so there is none to name.
	r := ev.Record()
	if want := "limit a connection before any request: client connection limit reached (2 connections at once)"; r.Detail != want || r.ErrorKind != "limit" || r.Error != ev.Reason {
		t.Errorf("record of the refused connection: detail %q kind %q error %q, want detail %q", r.Detail, r.ErrorKind, r.Error, want)
	}
}

func TestBufferLimit(t *testing.T) {
	var hits atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, n)
	}))
	defer ts.Close()
	ph := NewPlaceholder()
	h := start(t, Config{
		Allow:       rules(t, "api.test"),
		Resolve:     map[string][]netip.Addr{"api.test": {loop4}},
		Secrets:     []Secret{{Name: "K", Placeholder: ph, Value: "v-0123456789", Hosts: rules(t, "api.test"), AllowHTTP: true}},
		MaxBuffer:   100 << 10,
		MaxBodyScan: 128 << 10,
	})
	u := fmt.Sprintf("http://api.test:%d/", portOf(t, ts))
	post := func(size int) (int, string) {
		body := `{"k":"` + ph + `","pad":"` + strings.Repeat("p", size) + `"}`
		res, err := h.client(nil).Post(u, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		return res.StatusCode, readAll(res)
	}
	// A small body and the response's redaction window fit, again and
	// again: what a request holds is given back when it ends.
	for range 3 {
		if code, body := post(1 << 10); code != 200 {
			t.Fatalf("small body: %d %q", code, body)
		}
	}
	before := hits.Load()
	code, body := post(120 << 10)
	if code != http.StatusTooManyRequests || !strings.Contains(body, "buffer limit") || hits.Load() != before {
		t.Fatalf("body over the budget: %d %q (host reached: %v)", code, body, hits.Load() != before)
	}
	ev := h.rec.wait(t, func(e Event) bool { return e.Decision == DecisionLimit })
	if !strings.Contains(ev.Reason, "MaxBuffer 102400") {
		t.Fatalf("event %+v", ev)
	}
	deadline := time.Now().Add(hangGuard)
	for h.p.buf.used.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := h.p.buf.used.Load(); n != 0 {
		t.Fatalf("%d bytes still held after every request ended", n)
	}
}

// TestStreamedSubstitution sends bodies larger than MaxBodyScan, which are
// substituted as they stream, with placeholders across read boundaries.
func TestStreamedSubstitution(t *testing.T) {
	got := make(chan string, 1)
	length := make(chan int64, 1)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		length <- r.ContentLength
		got <- string(b)
	}))
	defer ts.Close()
	ph, other := NewPlaceholder(), NewPlaceholder()
	const value = `v"al/ue 123`
	h := start(t, Config{
		Allow:   rules(t, "api.test", "other.test", "plain.test"),
		Resolve: map[string][]netip.Addr{"api.test": {loop4}, "other.test": {loop4}, "plain.test": {loop4}},
		Secrets: []Secret{
			{Name: "K", Placeholder: ph, Value: value, Hosts: rules(t, "api.test"), AllowHTTP: true},
			{Name: "OTHER", Placeholder: other, Value: "other-value", Hosts: rules(t, "other.test"), AllowHTTP: true},
		},
		MaxBodyScan: 1 << 10,
	})
	var sb strings.Builder
	sb.WriteString(`{"a":"`)
	for i := 0; sb.Len() < 300<<10; i++ {
		sb.WriteString(strings.Repeat("x", i%97) + ph)
	}
	sb.WriteString(`"}`)
	body := sb.String()
	send := func(host string, body string) *http.Response {
		pr, pw := io.Pipe()
		go func() {
			for b := body; len(b) > 0; {
				n := min(len(b), 4093)
				pw.Write([]byte(b[:n]))
				b = b[n:]
			}
			pw.Close()
		}()
		res, err := h.client(nil).Post(fmt.Sprintf("http://%s:%d/", host, portOf(t, ts)), "application/json", pr)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	if res := send("api.test", body); res.StatusCode != 200 {
		t.Fatalf("got %d", res.StatusCode)
	}
	if want := strings.ReplaceAll(body, ph, jsonEscape(value)); <-got != want || <-length != -1 {
		t.Fatal("the host did not get the body with every placeholder substituted, chunked")
	}
	// Where nothing can be substituted, a scanned body keeps its length.
	plain := strings.Repeat(`{"a":"b"}`, 10<<10)
	res, err := h.client(nil).Post(fmt.Sprintf("http://plain.test:%d/", portOf(t, ts)), "application/json", strings.NewReader(plain))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if n := <-length; <-got != plain || n != int64(len(plain)) {
		t.Fatalf("unbound host: Content-Length %d, want %d", n, len(plain))
	}
	// The two exchanges may be audited in either order: find api.test's.
	ev := h.rec.wait(t, func(e Event) bool { return e.Method == "POST" && e.Host == "api.test" })
	if ev.Decision != DecisionAllow || len(ev.Secrets) != 1 || ev.Secrets[0] != "K" {
		t.Fatalf("event %+v", ev)
	}
	// The placeholder of a secret not bound to the host cuts the request
	// before it; the host never sees it.
	res = send("api.test", strings.Repeat("y", 10<<10)+other+strings.Repeat("z", 10<<10))
	select {
	case seen := <-got:
		if strings.Contains(seen, other) {
			t.Fatal("the placeholder reached the host")
		}
	case <-time.After(100 * time.Millisecond):
	}
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("unbound placeholder: %d", res.StatusCode)
	}
	ev = h.rec.wait(t, func(e Event) bool { return e.Decision == DecisionDeny })
	if !strings.Contains(ev.Reason, "secret OTHER") {
		t.Fatalf("event %+v", ev)
	}
}

// TestResponseHeaderLimit checks that a host's response header is held up
// to 64 KiB, not Go's default of 10 MiB: 16 clients that read nothing,
// answered by an allowed host with 9 MiB of header each, get a 502 naming
// the limit, and the proxy's live heap grows by far less than the 144 MiB
// the headers would hold.
func TestResponseHeaderLimit(t *testing.T) {
	const n = 16
	line := "X-Big: " + strings.Repeat("v", 1<<20-16) + "\r\n"
	header := "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n" + strings.Repeat(line, 9) + "\r\n" // shared, allocated once
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				http.ReadRequest(bufio.NewReader(c))
				io.WriteString(c, header)
				<-stop
			}()
		}
	}()
	h := start(t, Config{
		Allow:   rules(t, "big.test"),
		Resolve: map[string][]netip.Addr{"big.test": {loop4}},
	})
	heap := func() int64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		return int64(m.HeapAlloc)
	}
	base := heap()
	var conns []net.Conn
	for range n {
		c, err := net.Dial("tcp", h.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.(*net.TCPConn).SetReadBuffer(4096)
		conns = append(conns, c)
		fmt.Fprintf(c, "GET http://big.test:%d/ HTTP/1.1\r\nHost: big.test\r\n\r\n", l.Addr().(*net.TCPAddr).Port)
	}
	deadline := time.Now().Add(hangGuard)
	for time.Now().Before(deadline) && len(h.rec.all()) < n {
		time.Sleep(10 * time.Millisecond)
	}
	grew := heap() - base
	t.Logf("%d clients reading nothing: live heap %+d KiB", n, grew>>10)
	if grew > 32<<20 {
		t.Errorf("the proxy holds %d MiB of response headers for %d clients", grew>>20, n)
	}
	evs := h.rec.all()
	if len(evs) != n {
		t.Fatalf("%d events for %d requests: %+v", len(evs), n, evs)
	}
	for _, ev := range evs {
		if ev.Decision != DecisionError || ev.Status != http.StatusBadGateway || !strings.Contains(ev.Reason, "64 KiB") {
			t.Fatalf("event %+v", ev)
		}
	}
	conns[0].SetReadDeadline(time.Now().Add(hangGuard))
	res, err := http.ReadResponse(bufio.NewReader(conns[0]), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "response header") {
		t.Fatalf("got %d %q", res.StatusCode, body)
	}
}

// Each request or tunnel is one audit record, refused or not: past
// MaxEvents in a call, requests are refused (429) without a record each,
// after one limit record that says so, and ResetBudget (the next call)
// starts over. Before, a skill looping over refused requests wrote about
// 3.5 MB of audit log a second, without end.
func TestEventLimit(t *testing.T) {
	h := start(t, Config{Allow: rules(t, "api.test"), Resolve: map[string][]netip.Addr{"api.test": {loop4}}, MaxEvents: 5})
	c := h.client(nil)
	statuses := func(n int) []int {
		t.Helper()
		var out []int
		for range n {
			status, _, _ := get(t, c, "http://other.test/")
			out = append(out, status)
		}
		return out
	}
	if got := statuses(8); !slices.Equal(got, []int{403, 403, 403, 403, 403, 429, 429, 429}) {
		t.Errorf("statuses %v: want 5 refusals, then the limit", got)
	}
	evs := h.rec.all()
	var deny, limit int
	for _, ev := range evs {
		switch ev.Decision {
		case DecisionDeny:
			deny++
		case DecisionLimit:
			limit++
			if !strings.Contains(ev.Reason, "MaxEvents") || !strings.Contains(ev.Reason, "not audited one by one") {
				t.Errorf("limit reason %q", ev.Reason)
			}
		}
	}
	if deny != 5 || limit != 1 || len(evs) != 6 {
		t.Errorf("%d events (%d deny, %d limit), want the 5 refusals and one limit: %+v", len(evs), deny, limit, evs)
	}
	h.p.ResetBudget()
	if got := statuses(1); got[0] != 403 {
		t.Errorf("after ResetBudget: %v, want the request decided again", got)
	}
	if n := len(h.rec.all()); n != 7 {
		t.Errorf("after ResetBudget: %d events, want 7", n)
	}
}
