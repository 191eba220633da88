package egress

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestHTTPAllowed(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "host=%s path=%s", r.Host, r.URL.Path)
	}))
	defer ts.Close()
	port := portOf(t, ts)
	h := start(t, Config{
		Allow:   rules(t, "api.test"),
		Resolve: map[string][]netip.Addr{"api.test": {loop4}},
	})
	u := fmt.Sprintf("http://api.test:%d/hello", port)
	code, body, _ := get(t, h.client(nil), u)
	if code != 200 || body != fmt.Sprintf("host=api.test:%d path=/hello", port) {
		t.Fatalf("got %d %q", code, body)
	}
	ev := h.rec.wait(t, func(e Event) bool { return e.Method == "GET" })
	want := fmt.Sprintf("127.0.0.1:%d", port)
	if ev.Decision != DecisionAllow || ev.Host != "api.test" || ev.Port != port || ev.Addr != want || ev.Status != 200 || ev.BytesDown != int64(len(body)) {
		t.Fatalf("event %+v", ev)
	}
}

func TestHTTPSConnectTunnel(t *testing.T) {
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "tls ok")
	}))
	defer ts.Close()
	port := portOf(t, ts)
	h := start(t, Config{
		Allow:   rules(t, "example.com"),
		Resolve: map[string][]netip.Addr{"example.com": {loop4}},
	})
	c := h.client(serverPool(ts))
	var peer *x509.Certificate
	c.Transport.(*http.Transport).TLSClientConfig.VerifyConnection = func(cs tls.ConnectionState) error {
		peer = cs.PeerCertificates[0]
		return nil
	}
	code, body, _ := get(t, c, fmt.Sprintf("https://example.com:%d/", port))
	if code != 200 || body != "tls ok" {
		t.Fatalf("got %d %q", code, body)
	}
	if !peer.Equal(ts.Certificate()) {
		t.Fatal("tunnel did not reach the real server's certificate")
	}
	c.CloseIdleConnections()
	ev := h.rec.wait(t, func(e Event) bool { return e.Method == "CONNECT" })
	if ev.Decision != DecisionAllow || ev.Intercepted || ev.BytesUp == 0 || ev.BytesDown == 0 || ev.Port != port {
		t.Fatalf("event %+v", ev)
	}
}

func TestDeniedHost(t *testing.T) {
	h := start(t, Config{Allow: rules(t, "api.test")})
	code, body, hdr := get(t, h.client(nil), "http://other.test/x")
	if code != 403 || !strings.Contains(body, "--allow-net other.test:80") || hdr.Get("X-Skillbox-Egress") != "deny" {
		t.Fatalf("got %d %q", code, body)
	}
	ev := h.rec.wait(t, func(e Event) bool { return e.Host == "other.test" })
	if ev.Decision != DecisionDeny || ev.Grant != "--allow-net other.test:80" || ev.Status != 403 {
		t.Fatalf("event %+v", ev)
	}
	// CONNECT too.
	_, err := h.client(nil).Get("https://other.test:8443/")
	if err == nil || !strings.Contains(err.Error(), "Forbidden") {
		t.Fatalf("CONNECT: %v", err)
	}
	ev = h.rec.wait(t, func(e Event) bool { return e.Method == "CONNECT" })
	if ev.Decision != DecisionDeny || ev.Host != "other.test" || ev.Port != 8443 {
		t.Fatalf("event %+v", ev)
	}
}

func TestNoRuleNoNetwork(t *testing.T) {
	h := start(t, Config{})
	code, _, _ := get(t, h.client(nil), "http://api.test/")
	if code != 403 {
		t.Fatalf("got %d", code)
	}
}

func TestIPLiteral(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hi") }))
	defer ts.Close()
	port := portOf(t, ts)
	h := start(t, Config{Allow: rules(t, "api.test", "*.test")})
	for _, u := range []string{
		ts.URL,
		fmt.Sprintf("http://[::ffff:127.0.0.1]:%d/", port),
		fmt.Sprintf("http://[::1]:%d/", port),
	} {
		code, body, _ := get(t, h.client(nil), u)
		if code != 403 || !strings.Contains(body, "address literal") {
			t.Fatalf("%s: got %d %q", u, code, body)
		}
	}
	// Listing the literal grants it.
	h = start(t, Config{Allow: rules(t, fmt.Sprintf("127.0.0.1:%d", port))})
	if code, body, _ := get(t, h.client(nil), ts.URL); code != 200 || body != "hi" {
		t.Fatalf("granted literal: %d %q", code, body)
	}
}

func TestRebinding(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "inner") }))
	defer ts.Close()
	port := portOf(t, ts)
	u := fmt.Sprintf("http://rebind.test:%d/", port)
	res := fakeResolver{"rebind.test": {loop4}}

	h := start(t, Config{Allow: rules(t, "rebind.test"), Resolver: res})
	code, body, _ := get(t, h.client(nil), u)
	if code != 403 || !strings.Contains(body, "loopback") || !strings.Contains(body, "--egress-resolve rebind.test=127.0.0.1") {
		t.Fatalf("got %d %q", code, body)
	}
	ev := h.rec.wait(t, func(e Event) bool { return e.Host == "rebind.test" })
	if ev.Decision != DecisionDeny || ev.Addr != "" {
		t.Fatalf("event %+v", ev)
	}

	// An --egress-resolve mapping is an explicit grant of the address.
	h = start(t, Config{Allow: rules(t, "rebind.test"), Resolver: res,
		Resolve: map[string][]netip.Addr{"rebind.test": {loop4}}})
	if code, body, _ := get(t, h.client(nil), u); code != 200 || body != "inner" {
		t.Fatalf("with mapping: %d %q", code, body)
	}
	// So is an address rule.
	h = start(t, Config{Allow: rules(t, "rebind.test", "127.0.0.1"), Resolver: res})
	if code, body, _ := get(t, h.client(nil), u); code != 200 || body != "inner" {
		t.Fatalf("with address rule: %d %q", code, body)
	}
}

func TestResolvedAddressFiltering(t *testing.T) {
	// Unit test of authorize: nothing is dialled.
	pub := netip.MustParseAddr("203.0.114.7")
	p, err := New(Config{
		Allow: rules(t, "mixed.test", "local.test", "v6.test", "meta.test"),
		Resolver: fakeResolver{
			"mixed.test": {loop4, pub, netip.MustParseAddr("10.1.2.3")},
			"local.test": {loop4, netip.MustParseAddr("::1")},
			"v6.test":    {netip.MustParseAddr("::ffff:192.168.1.1"), netip.MustParseAddr("64:ff9b::a9fe:a9fe")},
			"meta.test":  {netip.MustParseAddr("169.254.169.254")},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	addrs, d := p.authorize(context.Background(), target{name: "mixed.test", port: 80})
	if d != nil || len(addrs) != 1 || addrs[0] != pub {
		t.Fatalf("mixed: %v %v", addrs, d)
	}
	for _, n := range []string{"local.test", "v6.test", "meta.test"} {
		if _, d := p.authorize(context.Background(), target{name: n, port: 80}); d == nil || d.decision != DecisionDeny {
			t.Fatalf("%s: not denied", n)
		}
	}
	_, d = p.authorize(context.Background(), target{name: "meta.test", port: 80})
	if !strings.Contains(d.reason, "cloud metadata") {
		t.Fatalf("meta: %v", d.reason)
	}
	_, d = p.authorize(context.Background(), target{name: "nx.test", port: 80})
	if d == nil || !strings.Contains(d.reason, "not in the allowlist") {
		t.Fatalf("nx.test is not allowed; want the allowlist denial, got %v", d)
	}
}

func TestMetadataRefused(t *testing.T) {
	h := start(t, Config{
		Allow:    rules(t, "meta.test", "*.test"),
		Resolver: fakeResolver{"meta.test": {netip.MustParseAddr("169.254.169.254")}},
	})
	for _, u := range []string{"http://meta.test/latest/meta-data/", "http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/"} {
		code, body, _ := get(t, h.client(nil), u)
		if code != 403 {
			t.Fatalf("%s: got %d %q", u, code, body)
		}
	}
}

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		addr, want string
	}{
		{"127.0.0.1", "loopback"},
		{"127.9.9.9", "loopback"},
		{"10.0.0.1", "private"},
		{"172.16.5.4", "private"},
		{"192.168.1.1", "private"},
		{"169.254.1.1", "link-local"},
		{"169.254.169.254", "cloud metadata"},
		{"100.64.0.1", "carrier-grade NAT"},
		{"100.100.100.200", "cloud metadata"},
		{"0.0.0.0", "unspecified"},
		{"255.255.255.255", "reserved or broadcast"},
		{"224.0.0.1", "multicast"},
		{"::", "unspecified"},
		{"::1", "loopback"},
		{"fe80::1", "link-local"},
		{"ff02::1", "multicast"},
		{"fc00::1", "unique-local"},
		{"fd00:ec2::254", "cloud metadata"},
		{"::ffff:127.0.0.1", "loopback"},
		{"::ffff:169.254.169.254", "cloud metadata"},
		{"::127.0.0.1", "not global unicast"},
		{"64:ff9b::7f00:1", "NAT64 form of loopback"},
		{"2002:a00:1::", "6to4 form of private"},
		{"2001:db8::1", "documentation"},
		{"2001:0:4136:e378::1", "Teredo"},
		{"8.8.8.8", ""},
		{"1.1.1.1", ""},
		{"2606:4700::1111", ""},
		{"64:ff9b::808:808", ""},
	} {
		if got := classify(netip.MustParseAddr(c.addr)); got != c.want {
			t.Errorf("classify(%s) = %q, want %q", c.addr, got, c.want)
		}
	}
}

func TestPortRules(t *testing.T) {
	a := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "a") }))
	defer a.Close()
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "b") }))
	defer b.Close()
	pa, pb := portOf(t, a), portOf(t, b)
	h := start(t, Config{
		Allow:   rules(t, fmt.Sprintf("api.test:%d", pa)),
		Resolve: map[string][]netip.Addr{"api.test": {loop4}},
	})
	if code, body, _ := get(t, h.client(nil), fmt.Sprintf("http://api.test:%d/", pa)); code != 200 || body != "a" {
		t.Fatalf("granted port: %d %q", code, body)
	}
	code, body, _ := get(t, h.client(nil), fmt.Sprintf("http://api.test:%d/", pb))
	if code != 403 || !strings.Contains(body, fmt.Sprintf("--allow-net api.test:%d", pb)) {
		t.Fatalf("other port: %d %q", code, body)
	}
}

func TestWildcardRules(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.Host) }))
	defer ts.Close()
	port := portOf(t, ts)
	h := start(t, Config{
		Allow: rules(t, "*.svc.test"),
		Resolve: map[string][]netip.Addr{
			"a.svc.test": {loop4}, "b.c.svc.test": {loop4}, "svc.test": {loop4}, "evilsvc.test": {loop4},
		},
	})
	for host, want := range map[string]int{"a.svc.test": 200, "B.C.SVC.TEST": 200, "svc.test": 403, "evilsvc.test": 403} {
		code, _, _ := get(t, h.client(nil), fmt.Sprintf("http://%s:%d/", host, port))
		if code != want {
			t.Errorf("%s: got %d, want %d", host, code, want)
		}
	}
}

func TestRedirectIsChecked(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://elsewhere.test/steal", http.StatusFound)
	}))
	defer ts.Close()
	h := start(t, Config{Allow: rules(t, "api.test"), Resolve: map[string][]netip.Addr{"api.test": {loop4}}})
	code, _, _ := get(t, h.client(nil), fmt.Sprintf("http://api.test:%d/", portOf(t, ts)))
	if code != 403 {
		t.Fatalf("redirect target: got %d", code)
	}
	h.rec.wait(t, func(e Event) bool { return e.Host == "elsewhere.test" && e.Decision == DecisionDeny })
}

func TestHopByHopStripped(t *testing.T) {
	seen := make(chan http.Header, 1)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		w.Header().Set("Keep-Alive", "timeout=99")
		w.Header().Set("Proxy-Authenticate", "Basic")
		w.Header().Set("X-End", "1")
		io.WriteString(w, "ok")
	}))
	defer ts.Close()
	h := start(t, Config{Allow: rules(t, "api.test"), Resolve: map[string][]netip.Addr{"api.test": {loop4}}})
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET http://api.test:%d/ HTTP/1.1\r\nHost: api.test\r\nConnection: keep-alive, X-Hop\r\n"+
		"X-Hop: secret-hop\r\nKeep-Alive: timeout=5\r\nProxy-Authorization: Basic Zm9vOmJhcg==\r\n"+
		"Proxy-Connection: keep-alive\r\nUpgrade: h2c\r\nX-End: 1\r\n\r\n", portOf(t, ts))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	hdr := <-seen
	for _, k := range []string{"X-Hop", "Keep-Alive", "Proxy-Authorization", "Proxy-Connection", "Upgrade"} {
		if hdr.Get(k) != "" {
			t.Errorf("upstream saw hop-by-hop %s: %q", k, hdr.Get(k))
		}
	}
	if hdr.Get("X-End") != "1" {
		t.Error("end-to-end header lost")
	}
	if res.Header.Get("Keep-Alive") != "" || res.Header.Get("Proxy-Authenticate") != "" || res.Header.Get("X-End") != "1" {
		t.Errorf("response headers %v", res.Header)
	}
}

func TestByteLimit(t *testing.T) {
	big := strings.Repeat("x", 200<<10)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, big) }))
	defer ts.Close()
	h := start(t, Config{
		Allow:    rules(t, "api.test"),
		Resolve:  map[string][]netip.Addr{"api.test": {loop4}},
		MaxBytes: 50 << 10,
	})
	u := fmt.Sprintf("http://api.test:%d/", portOf(t, ts))
	res, err := h.client(nil).Get(u)
	if err == nil {
		b, rerr := io.ReadAll(res.Body)
		res.Body.Close()
		if rerr == nil && len(b) == len(big) {
			t.Fatal("whole body passed the byte limit")
		}
	}
	h.rec.wait(t, func(e Event) bool { return e.Decision == DecisionLimit && e.Method == "GET" })
	// Budget spent: the next request is refused before it starts.
	code, body, _ := get(t, h.client(nil), u)
	if code != http.StatusTooManyRequests || !strings.Contains(body, "byte limit") {
		t.Fatalf("after limit: %d %q", code, body)
	}
}

func TestByteLimitTunnel(t *testing.T) {
	big := strings.Repeat("y", 200<<10)
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, big) }))
	defer ts.Close()
	h := start(t, Config{
		Allow:    rules(t, "example.com"),
		Resolve:  map[string][]netip.Addr{"example.com": {loop4}},
		MaxBytes: 50 << 10,
	})
	res, err := h.client(serverPool(ts)).Get(fmt.Sprintf("https://example.com:%d/", portOf(t, ts)))
	if err == nil {
		b, rerr := io.ReadAll(res.Body)
		res.Body.Close()
		if rerr == nil && len(b) == len(big) {
			t.Fatal("whole body passed the byte limit")
		}
	}
	h.rec.wait(t, func(e Event) bool { return e.Decision == DecisionLimit && e.Method == "CONNECT" })
}

func TestConnLimit(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer ts.Close()
	h := start(t, Config{
		Allow:    rules(t, "api.test", "*.api.test"),
		Resolve:  map[string][]netip.Addr{"api.test": {loop4}, "x.api.test": {loop4}, "y.api.test": {loop4}},
		MaxConns: 2,
	})
	port := portOf(t, ts)
	c := h.client(nil)
	for i, host := range []string{"api.test", "x.api.test"} {
		if code, _, _ := get(t, c, fmt.Sprintf("http://%s:%d/", host, port)); code != 200 {
			t.Fatalf("request %d: %d", i, code)
		}
	}
	// A pooled upstream connection is reused without counting again.
	if code, _, _ := get(t, c, fmt.Sprintf("http://api.test:%d/", port)); code != 200 {
		t.Fatalf("reuse: %d", code)
	}
	code, body, _ := get(t, c, fmt.Sprintf("http://y.api.test:%d/", port))
	if code != http.StatusTooManyRequests || !strings.Contains(body, "connection limit") {
		t.Fatalf("third connection: %d %q", code, body)
	}
	h.rec.wait(t, func(e Event) bool { return e.Decision == DecisionLimit && e.Host == "y.api.test" })
	if n, _ := h.p.Stats(); n != 3 {
		t.Fatalf("conns counted %d", n)
	}
}

// echoServer reports what it received as JSON, and echoes the Authorization
// header back in a header and the body.
func echoHandler(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("X-Echo", r.Header.Get("Authorization"))
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{
		"auth": r.Header.Get("Authorization"), "query": r.URL.Query().Get("key"), "path": r.URL.Path,
		"body": string(body), "ctype": r.Header.Get("Content-Type"),
	})
}

func TestSecretSubstitutionHTTP(t *testing.T) {
	got := make(chan map[string]string, 10)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- map[string]string{"auth": r.Header.Get("Authorization"), "query": r.URL.Query().Get("key"),
			"path": r.URL.Path, "body": string(body), "len": fmt.Sprint(r.ContentLength)}
		r.Body = io.NopCloser(bytes.NewReader(body))
		echoHandler(w, r)
	}))
	defer ts.Close()
	const value = `sk-live-"quoted"&amp=1/x y`
	ph := NewPlaceholder()
	h := start(t, Config{
		Allow:   rules(t, "api.test"),
		Resolve: map[string][]netip.Addr{"api.test": {loop4}},
		Secrets: []Secret{{Name: "API_KEY", Placeholder: ph, Value: value, Hosts: rules(t, "api.test"), AllowHTTP: true}},
	})
	base := fmt.Sprintf("http://api.test:%d", portOf(t, ts))

	// Header, query and path.
	req, _ := http.NewRequest("GET", base+"/v3/"+ph+"/items?key="+ph, nil)
	req.Header.Set("Authorization", "Bearer "+ph)
	res, err := h.client(nil).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	clientView := readAll(res)
	res.Body.Close()
	srv := <-got
	if srv["auth"] != "Bearer "+value || srv["query"] != value || srv["path"] != "/v3/"+value+"/items" {
		t.Fatalf("server saw %q", srv)
	}
	if strings.Contains(clientView, "sk-live") || strings.Contains(res.Header.Get("X-Echo"), "sk-live") {
		t.Fatalf("value leaked back to the client: %q %q", clientView, res.Header)
	}
	if res.Header.Get("X-Echo") != "Bearer "+ph || !strings.Contains(clientView, ph) {
		t.Fatalf("redaction should show the placeholder: %q %q", clientView, res.Header.Get("X-Echo"))
	}
	ev := h.rec.wait(t, func(e Event) bool { return e.Method == "GET" })
	if len(ev.Secrets) != 1 || ev.Secrets[0] != "API_KEY" {
		t.Fatalf("event %+v", ev)
	}
	for _, e := range h.rec.all() {
		if strings.Contains(fmt.Sprintf("%+v", e), "sk-live") {
			t.Fatalf("value in audit: %+v", e)
		}
	}

	// JSON, form and text bodies, each encoded for its syntax.
	for _, c := range []struct{ ctype, body, want string }{
		{"application/json", `{"key":"` + ph + `"}`, `{"key":` + mustJSON(value) + `}`},
		{"application/x-www-form-urlencoded", "key=" + ph + "&a=b", "key=" + url.QueryEscape(value) + "&a=b"},
		{"text/plain; charset=utf-8", "key is " + ph, "key is " + value},
		{"application/octet-stream", "key is " + ph, "key is " + ph}, // not substituted
	} {
		res, err := h.client(nil).Post(base+"/post", c.ctype, strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		clientView := readAll(res)
		res.Body.Close()
		srv := <-got
		if srv["body"] != c.want || srv["len"] != fmt.Sprint(len(c.want)) {
			t.Errorf("%s: server saw %q (len %s), want %q", c.ctype, srv["body"], srv["len"], c.want)
		}
		if strings.Contains(clientView, "sk-live") {
			t.Errorf("%s: value leaked back: %q", c.ctype, clientView)
		}
		if c.ctype == "application/json" {
			var m map[string]string
			json.Unmarshal([]byte(clientView), &m)
			var sent map[string]string
			json.Unmarshal([]byte(m["body"]), &sent)
			if sent["key"] != ph {
				t.Errorf("client view of the echoed JSON: %q", clientView)
			}
		}
	}
	// Chunked JSON body (no Content-Length).
	res, err = h.client(nil).Post(base+"/post", "application/json", io.MultiReader(strings.NewReader(`{"k":"`), strings.NewReader(ph+`"}`)))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if srv := <-got; srv["body"] != `{"k":`+mustJSON(value)+`}` {
		t.Errorf("chunked: %q", srv["body"])
	}
	// A compressed body passes unmodified, whichever Content-Encoding line
	// names the coding.
	for _, lines := range [][]string{{"gzip"}, {"identity", "gzip"}} {
		body := `{"key":"` + ph + `"}` // as the host would read it once decoded: not substituted
		req, _ := http.NewRequest("POST", base+"/post", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header["Content-Encoding"] = lines
		res, err := h.client(nil).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if srv := <-got; srv["body"] != body {
			t.Errorf("Content-Encoding %q: server saw %q, want the body unmodified", lines, srv["body"])
		}
	}
}

func mustJSON(s string) string {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	e.Encode(s)
	return strings.TrimSpace(b.String())
}

func TestSecretRedactionGzip(t *testing.T) {
	const value = "sk-gzip-value-123456"
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept-Encoding") != "identity" {
			t.Errorf("a bound host was sent Accept-Encoding %q, want identity", r.Header.Get("Accept-Encoding"))
		}
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		io.WriteString(zw, "your key "+value+" is wrong; "+strings.Repeat("pad ", 20000)+value)
		zw.Close()
	}))
	defer ts.Close()
	ph := NewPlaceholder()
	h := start(t, Config{
		Allow:   rules(t, "api.test"),
		Resolve: map[string][]netip.Addr{"api.test": {loop4}},
		Secrets: []Secret{{Name: "K", Placeholder: ph, Value: value, Hosts: rules(t, "api.test"), AllowHTTP: true}},
	})
	req, _ := http.NewRequest("GET", fmt.Sprintf("http://api.test:%d/", portOf(t, ts)), nil)
	req.Header.Set("Accept-Encoding", "gzip")
	tr := h.client(nil).Transport.(*http.Transport)
	tr.DisableCompression = true
	res, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.Header.Get("Content-Encoding") != "" || bytes.Contains(b, []byte(value)) || bytes.Count(b, []byte(ph)) != 2 {
		t.Fatalf("encoding %q, body %.80q...", res.Header.Get("Content-Encoding"), b)
	}
}

func TestSecretNotOverPlainHTTPByDefault(t *testing.T) {
	var hit atomic.Bool
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hit.Store(true) }))
	defer ts.Close()
	ph := NewPlaceholder()
	h := start(t, Config{
		Allow:   rules(t, "api.test"),
		Resolve: map[string][]netip.Addr{"api.test": {loop4}},
		Secrets: []Secret{{Name: "K", Placeholder: ph, Value: "v-123", Hosts: rules(t, "api.test")}},
	})
	code, body, _ := get(t, h.client(nil), fmt.Sprintf("http://api.test:%d/?k=%s", portOf(t, ts), ph))
	if code != 403 || !strings.Contains(body, "only sent over https") || hit.Load() {
		t.Fatalf("got %d %q (server hit: %v)", code, body, hit.Load())
	}
}

func TestPlaceholderToUnboundHost(t *testing.T) {
	hit := make(chan bool, 1)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hit <- true }))
	defer ts.Close()
	ph := NewPlaceholder()
	h := start(t, Config{
		Allow:   rules(t, "api.test", "evil.test"),
		Resolve: map[string][]netip.Addr{"api.test": {loop4}, "evil.test": {loop4}},
		Secrets: []Secret{{Name: "ETHERSCAN_API_KEY", Placeholder: ph, Value: "real-value-1", Hosts: rules(t, "api.test"), AllowHTTP: true}},
	})
	u := fmt.Sprintf("http://evil.test:%d/", portOf(t, ts))
	for name, mk := range map[string]func() *http.Request{
		"header": func() *http.Request {
			r, _ := http.NewRequest("GET", u, nil)
			r.Header.Set("X-Api-Key", ph)
			return r
		},
		"query": func() *http.Request { r, _ := http.NewRequest("GET", u+"?apikey="+ph, nil); return r },
		"body": func() *http.Request {
			r, _ := http.NewRequest("POST", u, strings.NewReader(`{"a":"`+ph+`"}`))
			r.Header.Set("Content-Type", "application/json")
			return r
		},
	} {
		res, err := h.client(nil).Do(mk())
		if err != nil {
			t.Fatal(err)
		}
		b := readAll(res)
		res.Body.Close()
		if res.StatusCode != 403 || !strings.Contains(b, "ETHERSCAN_API_KEY") || !strings.Contains(b, "not bound") {
			t.Fatalf("%s: got %d %q", name, res.StatusCode, b)
		}
	}
	select {
	case <-hit:
		t.Fatal("request with a placeholder reached an unbound host")
	default:
	}
	ev := h.rec.wait(t, func(e Event) bool { return e.Host == "evil.test" })
	if ev.Decision != DecisionDeny || !strings.Contains(ev.Reason, "ETHERSCAN_API_KEY") {
		t.Fatalf("event %+v", ev)
	}
}

func TestHTTPSInterception(t *testing.T) {
	const value = "ghp_realtokenvalue0123456789"
	seen := make(chan string, 4)
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Get("Authorization") + " " + r.URL.RawQuery + " " + r.Host
		echoHandler(w, r)
	}))
	defer ts.Close()
	plain := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- "plain " + r.Header.Get("Authorization")
		io.WriteString(w, "untouched")
	}))
	defer plain.Close()
	port := portOf(t, ts)
	ph := NewPlaceholder()
	h := start(t, Config{
		Allow:           rules(t, "example.com", "127.0.0.1"),
		Resolve:         map[string][]netip.Addr{"example.com": {loop4}},
		Secrets:         []Secret{{Name: "GITHUB_TOKEN", Placeholder: ph, Value: value, Hosts: rules(t, "example.com")}},
		UpstreamRootCAs: serverPool(ts),
	})
	if !h.p.Intercepts() {
		t.Fatal("no interception with a bound secret")
	}
	roots := h.caPool(t)
	roots.AddCert(plain.Certificate()) // the sandbox's bundle: system roots + egress CA
	c := h.client(roots)
	var peer *x509.Certificate
	c.Transport.(*http.Transport).TLSClientConfig.VerifyConnection = func(cs tls.ConnectionState) error {
		peer = cs.PeerCertificates[0]
		return nil
	}
	req, _ := http.NewRequest("GET", fmt.Sprintf("https://example.com:%d/repos?token=%s", port, ph), nil)
	req.Header.Set("Authorization", "token "+ph)
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b := readAll(res)
	res.Body.Close()
	if got := <-seen; got != fmt.Sprintf("token %s token=%s example.com:%d", value, value, port) {
		t.Fatalf("server saw %q", got)
	}
	if strings.Contains(b, value) || strings.Contains(res.Header.Get("X-Echo"), value) || !strings.Contains(b, ph) {
		t.Fatalf("client view %q", b)
	}
	if peer.Issuer.CommonName != "skillbox egress ephemeral CA" || peer.DNSNames[0] != "example.com" {
		t.Fatalf("intercepted leaf: issuer %q names %v", peer.Issuer, peer.DNSNames)
	}
	ev := h.rec.wait(t, func(e Event) bool { return e.Method == "GET" && e.Intercepted })
	if ev.Decision != DecisionAllow || len(ev.Secrets) != 1 || ev.Addr != fmt.Sprintf("127.0.0.1:%d", port) {
		t.Fatalf("event %+v", ev)
	}

	// A host without a bound secret is tunnelled untouched.
	code, body, _ := get(t, c, plain.URL)
	if code != 200 || body != "untouched" || !peer.Equal(plain.Certificate()) {
		t.Fatalf("plain: %d %q issuer %q", code, body, peer.Issuer)
	}
	<-seen

	// Inside the tunnel, the Host header must name the tunnel's host.
	req, _ = http.NewRequest("GET", fmt.Sprintf("https://example.com:%d/", port), nil)
	req.Host = "other.test"
	res, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 400 {
		t.Fatalf("Host mismatch: %d", res.StatusCode)
	}
}

func TestInterceptionUpstreamVerified(t *testing.T) {
	// Without the upstream's root the proxy must refuse (502), never
	// downgrade verification.
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { t.Error("reached") }))
	defer ts.Close()
	ph := NewPlaceholder()
	h := start(t, Config{
		Allow:           rules(t, "example.com"),
		Resolve:         map[string][]netip.Addr{"example.com": {loop4}},
		Secrets:         []Secret{{Name: "K", Placeholder: ph, Value: "v-0001", Hosts: rules(t, "example.com")}},
		UpstreamRootCAs: x509.NewCertPool(),
	})
	code, _, _ := get(t, h.client(h.caPool(t)), fmt.Sprintf("https://example.com:%d/?k=%s", portOf(t, ts), ph))
	if code != http.StatusBadGateway {
		t.Fatalf("got %d", code)
	}
	h.rec.wait(t, func(e Event) bool { return e.Decision == DecisionError && strings.Contains(e.Reason, "certificate") })
}

func TestCANameConstraints(t *testing.T) {
	p, err := New(Config{Secrets: []Secret{{Name: "K", Placeholder: NewPlaceholder(), Value: "v-0001", Hosts: rules(t, "api.example.com", "*.corp.test")}}})
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.CACertPEM())
	for host, ok := range map[string]bool{"api.example.com": true, "x.corp.test": true, "evil.test": false, "corp.test": false, "127.0.0.1": false} {
		leaf, err := p.ca.leaf(host)
		if err != nil {
			t.Fatal(err)
		}
		_, err = leaf.Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: host})
		if (err == nil) != ok {
			t.Errorf("%s: verify err=%v, want ok=%v", host, err, ok)
		}
	}
	// A CA for address-bound secrets only vouches for those addresses.
	p, err = New(Config{Secrets: []Secret{{Name: "K", Placeholder: NewPlaceholder(), Value: "v-0001", Hosts: rules(t, "127.0.0.1:8443")}}})
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AppendCertsFromPEM(p.CACertPEM())
	for host, ok := range map[string]bool{"127.0.0.1": true, "127.0.0.2": false, "evil.test": false} {
		leaf, err := p.ca.leaf(host)
		if err != nil {
			t.Fatal(err)
		}
		_, err = leaf.Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: host})
		if (err == nil) != ok {
			t.Errorf("address CA, %s: verify err=%v, want ok=%v", host, err, ok)
		}
	}
	if ca := p.ca.cert; ca.NotAfter.Sub(ca.NotBefore) > 25*time.Hour || ca.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("CA validity %v alg %v", ca.NotAfter.Sub(ca.NotBefore), ca.PublicKeyAlgorithm)
	}
}

func TestEnv(t *testing.T) {
	p, _ := New(Config{})
	env := p.Env("127.0.0.1:3128")
	// The trust bundle is there with any network grant, not only with
	// interception.
	if env["HTTPS_PROXY"] != "http://127.0.0.1:3128" || env["all_proxy"] != "http://127.0.0.1:3128" || env["SSL_CERT_FILE"] != DefaultCAFile {
		t.Fatalf("env %v", env)
	}
	if p.CACertPEM() != nil {
		t.Fatal("CA without secrets")
	}
	p, _ = New(Config{CAFile: "/run/ca.pem", Secrets: []Secret{{Name: "K", Placeholder: NewPlaceholder(), Value: "v-0001", Hosts: rules(t, "a.test")}}})
	env = p.Env("127.0.0.1:3128")
	for _, k := range []string{"SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS"} {
		if env[k] != "/run/ca.pem" {
			t.Errorf("%s = %q", k, env[k])
		}
	}
	b, _ := p.CABundle()
	if !bytes.HasSuffix(b, p.CACertPEM()) {
		t.Error("bundle does not end with the CA")
	}
}

func TestValidate(t *testing.T) {
	ph := NewPlaceholder()
	good := Secret{Name: "K", Placeholder: ph, Value: "v-0001", Hosts: []Rule{{Host: "a.test"}}}
	for name, c := range map[string]Config{
		"uppercase rule":     {Allow: []Rule{{Host: "A.test"}}},
		"bad port":           {Allow: []Rule{{Host: "a.test", Port: 70000}}},
		"bad host":           {Allow: []Rule{{Host: "a_b.test"}}},
		"resolve ip key":     {Resolve: map[string][]netip.Addr{"1.2.3.4": {loop4}}},
		"resolve empty":      {Resolve: map[string][]netip.Addr{"a.test": {}}},
		"negative":           {MaxBytes: -1},
		"short placeholder":  {Secrets: []Secret{{Name: "K", Placeholder: "x", Value: "v", Hosts: good.Hosts}}},
		"no hosts":           {Secrets: []Secret{{Name: "K", Placeholder: ph, Value: "v"}}},
		"newline value":      {Secrets: []Secret{{Name: "K", Placeholder: ph, Value: "v\r\nX-Evil: 1", Hosts: good.Hosts}}},
		"duplicate":          {Secrets: []Secret{good, good}},
		"value in placehold": {Secrets: []Secret{{Name: "K", Placeholder: ph, Value: ph[:20], Hosts: good.Hosts}}},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: no error", name)
		}
		if _, err := New(c); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
	c := Config{Allow: rules(t, "a.test", "*.b.test:443", "[::1]:80", "10.0.0.1"), Secrets: []Secret{good},
		Resolve: map[string][]netip.Addr{"a.test": {loop4}}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestParseRule(t *testing.T) {
	for in, want := range map[string]Rule{
		"API.Example.COM.":    {Host: "api.example.com"},
		"api.example.com:443": {Host: "api.example.com", Port: 443},
		"*.example.com:8080":  {Host: "*.example.com", Port: 8080},
		"[::1]:80":            {Host: "::1", Port: 80},
		"::ffff:1.2.3.4":      {Host: "::ffff:1.2.3.4"},
		"[2001:DB8::1]":       {Host: "2001:db8::1"},
		"bücher.example":      {Host: "xn--bcher-kva.example"},
		"127.0.0.1:8080":      {Host: "127.0.0.1", Port: 8080},
	} {
		got, err := ParseRule(in)
		if err != nil || got != want {
			t.Errorf("ParseRule(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "a.test:0", "a.test:65536", "a.test:+80", "a..test", "-a.test", "a_b.test", "*.", "*", "a.*.test",
		"127.1", "2130706433", "a.test:80:90", "fe80::1%eth0", "[a.test]:80", "a test", "a.test/x", "@a.test",
		"[a.test]", "[10.0.0.1]", "[::1]:", "a.test:"} {
		if r, err := ParseRule(in); err == nil {
			t.Errorf("ParseRule(%q) = %+v, want an error", in, r)
		}
	}
}

func TestParseTarget(t *testing.T) {
	for _, c := range []struct {
		method, uri, scheme, host string
		port                      int
	}{
		{"CONNECT", "api.test:443", "", "api.test", 443},
		{"CONNECT", "[::1]:8443", "", "::1", 8443},
		{"GET", "http://API.test/x?y", "http", "api.test", 80},
		{"GET", "https://api.test", "https", "api.test", 443},
		{"GET", "http://api.test:8080", "http", "api.test", 8080},
		{"GET", "http://[::ffff:7f00:1]:81/", "http", "127.0.0.1", 81},
		{"GET", "HTTP://api.test./", "http", "api.test", 80},
	} {
		scheme, host, port, err := ParseTarget(c.method, c.uri)
		if err != nil || scheme != c.scheme || host != c.host || port != c.port {
			t.Errorf("ParseTarget(%s %s) = %q %q %d %v", c.method, c.uri, scheme, host, port, err)
		}
	}
	for _, c := range [][2]string{
		{"CONNECT", "api.test"}, {"CONNECT", "http://api.test/"}, {"GET", "/relative"}, {"GET", "ftp://api.test/"},
		{"GET", "http://user:pw@api.test/"}, {"GET", "http://api.test@evil.test/"}, {"GET", "http:///x"},
		{"GET", "http://[fe80::1%25eth0]/"}, {"GET", "http://127.1/"}, {"GET", "http://api.test:0/"}, {"GET", "http://a%2e.test/"},
		{"GET", "http://[api.test]:80/"}, {"CONNECT", "[api.test]:443"}, {"GET", "http://[api.test]/"},
	} {
		if _, h, p, err := ParseTarget(c[0], c[1]); err == nil {
			t.Errorf("ParseTarget(%s %s) = %q %d, want an error", c[0], c[1], h, p)
		}
	}
}

func TestRedactorBoundaries(t *testing.T) {
	s := prepareSecret(Secret{Name: "K", Placeholder: "PH-PLACEHOLDER-0001", Value: `a"b/c d`})
	in := `x a"b/c d y a\"b/c d z a%22b%2Fc+d w a%22b%2Fc%20d end a"b/c`
	want := `x PH-PLACEHOLDER-0001 y PH-PLACEHOLDER-0001 z PH-PLACEHOLDER-0001 w PH-PLACEHOLDER-0001 end a"b/c`
	for chunk := 1; chunk < len(in); chunk++ {
		r := newRedactor(io.NopCloser(&chunkReader{s: in, n: chunk}), []*secret{s})
		got, err := io.ReadAll(r)
		if err != nil || string(got) != want {
			t.Fatalf("chunk %d: %q %v", chunk, got, err)
		}
	}
}

type chunkReader struct {
	s string
	n int
}

func (c *chunkReader) Read(b []byte) (int, error) {
	if c.s == "" {
		return 0, io.EOF
	}
	n := min(c.n, len(c.s), len(b))
	copy(b, c.s[:n])
	c.s = c.s[n:]
	return n, nil
}

func TestCloseEndsServeAndTunnels(t *testing.T) {
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer ts.Close()
	p, err := New(Config{Allow: rules(t, "example.com"), Resolve: map[string][]netip.Addr{"example.com": {loop4}}, Resolver: fakeResolver{}})
	if err != nil {
		t.Fatal(err)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	done := make(chan error, 1)
	go func() { done <- p.Serve(l) }()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "CONNECT example.com:%d HTTP/1.1\r\nHost: example.com\r\n\r\n", portOf(t, ts))
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("CONNECT: %v %v", res, err)
	}
	p.Close()
	if err := <-done; err != nil {
		t.Fatalf("Serve after Close: %v", err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := br.ReadByte(); err == nil || errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		t.Fatalf("tunnel still open after Close: %v", err)
	}
	if err := p.Serve(l); !errors.Is(err, ErrClosed) {
		t.Fatalf("Serve after Close: %v", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// countingResolver counts lookups.
type countingResolver struct {
	fakeResolver
	n atomic.Int64
}

func (c *countingResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	c.n.Add(1)
	return c.fakeResolver.LookupNetIP(ctx, network, host)
}

func TestResolvedOnceDialledAsChecked(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer ts.Close()
	res := &countingResolver{fakeResolver: fakeResolver{"once.test": {loop4}}}
	h := start(t, Config{Allow: rules(t, "once.test", "127.0.0.1"), Resolver: res})
	port := portOf(t, ts)
	if code, _, _ := get(t, h.client(nil), fmt.Sprintf("http://once.test:%d/", port)); code != 200 {
		t.Fatalf("got %d", code)
	}
	if n := res.n.Load(); n != 1 {
		t.Fatalf("%d lookups for one request; the dialer must not resolve again", n)
	}
	ev := h.rec.wait(t, func(e Event) bool { return e.Host == "once.test" })
	if ev.Addr != fmt.Sprintf("127.0.0.1:%d", port) {
		t.Fatalf("event %+v", ev)
	}
}
