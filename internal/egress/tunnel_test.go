package egress

import (
	"bufio"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// front is a shared front (a CDN, shared hosting, one ingress for many
// names) on loopback: it answers any name, saying which one it served.
// Only front.test is granted.
type front struct {
	h       *harness
	tls     *httptest.Server
	plain   *httptest.Server
	reached atomic.Int64 // requests the front answered
}

func newFront(t *testing.T) *front {
	f := &front{}
	vhost := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.reached.Add(1)
		sni := ""
		if r.TLS != nil {
			sni = r.TLS.ServerName
		}
		fmt.Fprintf(w, "vhost=%s sni=%s", r.Host, sni)
	})
	f.tls = httptest.NewTLSServer(vhost)
	t.Cleanup(f.tls.Close)
	f.plain = httptest.NewServer(vhost)
	t.Cleanup(f.plain.Close)
	f.h = start(t, Config{
		Allow:         rules(t, "front.test"),
		Resolve:       map[string][]netip.Addr{"front.test": {loop4}},
		HeaderTimeout: 2 * time.Second,
	})
	return f
}

// tunnel opens a CONNECT tunnel to authority through the proxy.
func (f *front) tunnel(t *testing.T, authority string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", f.h.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(hangGuard))
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", authority, authority)
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("CONNECT %s: %v %v", authority, res, err)
	}
	return c, br
}

// tlsGet sends one GET for host over TLS (server name sni) in a tunnel
// to authority, and returns the answer or the error.
func (f *front) tlsGet(t *testing.T, authority string, cfg *tls.Config, host string) (string, error) {
	t.Helper()
	c, _ := f.tunnel(t, authority)
	defer c.Close()
	tc := tls.Client(c, cfg)
	if err := tc.Handshake(); err != nil {
		return "", err
	}
	fmt.Fprintf(tc, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", host)
	res, err := http.ReadResponse(bufio.NewReader(tc), nil)
	if err != nil {
		return "", err
	}
	b, err := io.ReadAll(res.Body)
	return string(b), err
}

// TestTunnelPinnedToTLSName checks that a raw CONNECT tunnel to a name
// carries TLS for that name only: a ClientHello naming another server
// (SNI), none, or one whose name is encrypted (ECH) is refused before a
// byte reaches the host, with an access_denied alert and a deny event.
func TestTunnelPinnedToTLSName(t *testing.T) {
	f := newFront(t)
	auth := fmt.Sprintf("front.test:%d", portOf(t, f.tls))

	// The granted name, written in another case: normalised, allowed.
	got, err := f.tlsGet(t, auth, &tls.Config{ServerName: "Front.Test", InsecureSkipVerify: true}, "front.test")
	if err != nil || got != "vhost=front.test sni=Front.Test" {
		t.Fatalf("granted name: %q %v", got, err)
	}
	ev := f.h.rec.wait(t, func(e Event) bool { return e.Method == "CONNECT" })
	if ev.Decision != DecisionAllow || ev.BytesUp == 0 || ev.BytesDown == 0 {
		t.Fatalf("allowed tunnel: event %+v", ev)
	}
	f.reached.Store(0)

	for _, tc := range []struct {
		name   string
		cfg    *tls.Config
		reason string
	}{
		{"other name", &tls.Config{ServerName: "evil.test", InsecureSkipVerify: true}, `server name (SNI) "evil.test" is not front.test`},
		{"no name", &tls.Config{InsecureSkipVerify: true}, "names no server (SNI)"},
		{"encrypted name", &tls.Config{MinVersion: tls.VersionTLS13, EncryptedClientHelloConfigList: echConfigList(t, "front.test"),
			InsecureSkipVerify: true}, "encrypted ClientHello"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := f.tlsGet(t, auth, tc.cfg, "evil.test")
			if err == nil || !strings.Contains(err.Error(), "access denied") {
				t.Fatalf("the tunnel carried TLS it should not: %q %v", got, err)
			}
			ev := f.h.rec.wait(t, func(e Event) bool {
				return e.Method == "CONNECT" && e.Decision == DecisionDeny && strings.Contains(e.Reason, tc.reason)
			})
			if ev.Host != "front.test" || ev.Status != http.StatusForbidden || ev.BytesUp != 0 {
				t.Fatalf("event %+v", ev)
			}
		})
	}
	if n := f.reached.Load(); n != 0 {
		t.Fatalf("the front answered %d refused requests", n)
	}
}

// TestTunnelPlainHTTPChecked checks that plain HTTP in a CONNECT tunnel to
// a name is checked request by request, as the forward path checks it: a
// Host naming another server is refused (400), the granted one reaches
// the host and is audited; bytes that are neither TLS nor HTTP are
// refused.
func TestTunnelPlainHTTPChecked(t *testing.T) {
	f := newFront(t)
	port := portOf(t, f.plain)
	auth := fmt.Sprintf("front.test:%d", port)

	c, br := f.tunnel(t, auth)
	ask := func(host string) (int, string) {
		fmt.Fprintf(c, "GET /x HTTP/1.1\r\nHost: %s\r\n\r\n", host)
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("Host %s: %v", host, err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return res.StatusCode, string(b)
	}
	// Kept alive: each request on the tunnel is checked.
	if code, body := ask(auth); code != 200 || body != "vhost="+auth+" sni=" {
		t.Fatalf("granted Host: %d %q", code, body)
	}
	if code, body := ask("evil.test"); code != http.StatusBadRequest || !strings.Contains(body, "does not name the tunnel's destination") {
		t.Fatalf("Host evil.test: %d %q", code, body)
	}
	if n := f.reached.Load(); n != 1 {
		t.Fatalf("the front answered %d requests, want the granted one", n)
	}
	ev := f.h.rec.wait(t, func(e Event) bool { return e.Method == "GET" && e.Decision == DecisionAllow })
	if ev.Host != "front.test" || ev.Port != port || ev.Status != 200 || ev.Intercepted {
		t.Fatalf("allowed request: event %+v", ev)
	}
	f.h.rec.wait(t, func(e Event) bool { return e.Method == "GET" && e.Decision == DecisionDeny })

	// Neither TLS nor HTTP: closed unanswered, audited.
	c, br = f.tunnel(t, auth)
	io.WriteString(c, "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
	if b, err := io.ReadAll(br); len(b) != 0 || err != nil {
		t.Fatalf("a tunnel carrying neither TLS nor HTTP: read %q %v", b, err)
	}
	f.h.rec.wait(t, func(e Event) bool {
		return e.Method == "CONNECT" && e.Decision == DecisionDeny && strings.Contains(e.Reason, "neither TLS nor HTTP")
	})
	if n := f.reached.Load(); n != 1 {
		t.Fatalf("the front answered %d requests, want 1", n)
	}
}

// TestTunnelHelloBounded checks that a tunnel is read for its ClientHello
// within HeaderTimeout and maxHello bytes, and that a tunnel to an
// address literal is not read at all (its grant is the address).
func TestTunnelHelloBounded(t *testing.T) {
	f := newFront(t)
	auth := fmt.Sprintf("front.test:%d", portOf(t, f.tls))

	// A hello that never ends: cut once maxHello bytes are read.
	c, br := f.tunnel(t, auth)
	go func(c net.Conn) {
		// Full records (16 KiB each) of a ClientHello announcing 60 KiB,
		// within what crypto/tls would read, over maxHello.
		record := func(body []byte) []byte {
			return append([]byte{0x16, 0x03, 0x01, byte(len(body) >> 8), byte(len(body))}, body...)
		}
		first := append([]byte{0x01, 0x00, 0xf0, 0x00}, make([]byte, 16<<10-4)...)
		if _, err := c.Write(record(first)); err != nil {
			return
		}
		for range 4 {
			if _, err := c.Write(record(make([]byte, 16<<10))); err != nil {
				return
			}
		}
	}(c)
	io.Copy(io.Discard, br)
	f.h.rec.wait(t, func(e Event) bool {
		return e.Method == "CONNECT" && e.Decision == DecisionDeny && strings.Contains(e.Reason, "no complete TLS ClientHello")
	})

	// Nothing sent: cut after HeaderTimeout, audited as a limit.
	c, br = f.tunnel(t, auth)
	if !closedWithin(t, c) {
		t.Fatal("a tunnel that sent nothing was not closed")
	}
	f.h.rec.wait(t, func(e Event) bool {
		return e.Method == "CONNECT" && e.Decision == DecisionLimit && strings.Contains(e.Reason, "HeaderTimeout")
	})

	// An address literal, granted by address: any name passes.
	h := start(t, Config{Allow: rules(t, "127.0.0.1")})
	ff := &front{h: h, tls: f.tls}
	got, err := ff.tlsGet(t, fmt.Sprintf("127.0.0.1:%d", portOf(t, f.tls)), &tls.Config{ServerName: "evil.test", InsecureSkipVerify: true}, "evil.test")
	if err != nil || got != "vhost=evil.test sni=evil.test" {
		t.Fatalf("tunnel to an address: %q %v", got, err)
	}
}

// echConfigList is an ECHConfigList (RFC 9849) of one X25519 config whose
// public name is publicName, enough for a client to send an encrypted
// ClientHello.
func echConfigList(t *testing.T, publicName string) []byte {
	t.Helper()
	key, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	u16 := func(b []byte, v int) []byte { return binary.BigEndian.AppendUint16(b, uint16(v)) }
	var c []byte
	c = append(c, 1)   // config_id
	c = u16(c, 0x0020) // KEM: DHKEM(X25519, HKDF-SHA256)
	pub := key.PublicKey().Bytes()
	c = u16(c, len(pub))
	c = append(c, pub...)
	c = u16(c, 4)      // one cipher suite:
	c = u16(c, 0x0001) // HKDF-SHA256
	c = u16(c, 0x0001) // AES-128-GCM
	c = append(c, 0)   // maximum_name_length
	c = append(c, byte(len(publicName)))
	c = append(c, publicName...)
	c = u16(c, 0) // no extensions
	cfg := u16(u16(nil, 0xfe0d), len(c))
	cfg = append(cfg, c...)
	return append(u16(nil, len(cfg)), cfg...)
}

// TestNoH2CUpgrade checks that no request is upgraded to cleartext HTTP/2
// (h2c): its streams would name any host after the one checked. The
// upgrade is dropped (the host answers in HTTP/1.1) on the forward path
// and in a plain-HTTP tunnel.
func TestNoH2CUpgrade(t *testing.T) {
	seen := make(chan string, 4)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Get("Upgrade") + "|" + r.Header.Get("HTTP2-Settings")
		io.WriteString(w, "http/1.1")
	}))
	defer ts.Close()
	h := start(t, Config{Allow: rules(t, "api.test"), Resolve: map[string][]netip.Addr{"api.test": {loop4}}})
	auth := fmt.Sprintf("api.test:%d", portOf(t, ts))
	upgrade := func(c net.Conn, br *bufio.Reader, target, proto string) {
		t.Helper()
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: %s\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n", target, auth, proto)
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if got := <-seen; got != "|" || res.StatusCode != 200 {
			t.Fatalf("Upgrade: %s: the host saw %q, answered %d", proto, got, res.StatusCode)
		}
	}
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(hangGuard))
	upgrade(c, bufio.NewReader(c), "http://"+auth+"/", "h2c")
	f := &front{h: h}
	c, br := f.tunnel(t, auth)
	upgrade(c, br, "/", "H2C")
}
