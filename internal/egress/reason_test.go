package egress

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// A refusal's reason is audited (twice per record: reason and error), and
// it may quote what the sandbox sent. Each stays short, whatever the
// sandbox sent, and a request for a path names neither the path nor the
// query (audit records never hold them): a skill sending 60 KB request
// lines in a loop wrote ~40 MB of audit log a second.
func TestRefusalReasonsStayShort(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer ts.Close()
	h := start(t, Config{Allow: rules(t, "api.test"), Resolve: map[string][]netip.Addr{"api.test": {loop4}}})
	long := strings.Repeat("A", 60<<10)
	f := &front{h: h}
	send := func(c net.Conn, br *bufio.Reader, req string) {
		t.Helper()
		c.SetDeadline(time.Now().Add(hangGuard))
		if _, err := fmt.Fprint(c, req); err != nil {
			t.Fatal(err)
		}
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		readAll(res)
		res.Body.Close()
		if res.StatusCode < 400 {
			t.Fatalf("%.40q...: status %d, want a refusal", req, res.StatusCode)
		}
	}
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	send(c, br, "GET /private/path?q=secret-query&"+long+" HTTP/1.1\r\nHost: api.test\r\n\r\n")
	send(c, br, "CONNECT "+long+" HTTP/1.1\r\nHost: x\r\n\r\n")
	send(c, br, long+" http://other.test/ HTTP/1.1\r\nHost: other.test\r\n\r\n")
	tc, tbr := f.tunnel(t, fmt.Sprintf("api.test:%d", portOf(t, ts)))
	send(tc, tbr, "GET / HTTP/1.1\r\nHost: "+long+".test\r\n\r\n")
	evs := h.rec.all()
	if len(evs) < 4 {
		t.Fatalf("%d events, want the 4 refusals: %+v", len(evs), evs)
	}
	for _, ev := range evs {
		rec := ev.Record()
		if n := len(rec.Error) + len(ev.Reason) + len(rec.Detail) + len(ev.Method); n > 4<<10 {
			t.Errorf("an audit record of %d bytes of reason (%.80q...)", n, ev.Reason)
		}
		if strings.Contains(ev.Reason, "private/path") || strings.Contains(ev.Reason, "secret-query") {
			t.Errorf("the reason quotes the request's path or query: %.200q", ev.Reason)
		}
	}
}
