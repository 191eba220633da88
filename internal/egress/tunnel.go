package egress

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"time"
)

// A tunnel to a name (CONNECT host:port) is pinned to that name: one
// address often serves many names (a CDN, shared hosting, an ingress),
// chosen by the TLS server name or the Host header, so the proxy reads the
// start of the tunnel before a byte of it goes upstream.
//
//   - TLS: the ClientHello's server name (SNI) must be the CONNECT name,
//     normalised as the proxy normalises hosts. A hello without one, or
//     with an encrypted ClientHello (whose inner name the proxy cannot
//     read), is refused.
//   - Plain HTTP: the tunnel is served as the proxy serves plain-HTTP
//     requests, each request checked (its Host must name the tunnel's
//     destination) and forwarded on its own.
//   - Anything else, or nothing within HeaderTimeout, is refused.
//
// A tunnel to an address literal is not read: the grant is the address,
// whatever it serves.

const (
	// maxHello bounds the bytes read from a tunnel before its ClientHello is
	// complete. A ClientHello is a few KiB (post-quantum key shares
	// included); this allows two full TLS records.
	maxHello = 32 << 10
	// helloCost is what reading a ClientHello holds at most, charged to
	// MaxBuffer: the bytes read, kept to be replayed upstream, and the TLS
	// parser's own copy.
	helloCost = 2 * maxHello
	// recordTypeHandshake starts every TLS ClientHello record.
	recordTypeHandshake = 0x16
	// extensionECH and extensionESNI are the encrypted ClientHello
	// extension and its draft predecessor: the name they hide cannot be
	// checked.
	extensionECH  = 0xfe0d
	extensionESNI = 0xffce
)

// errHelloRead stops the TLS parser once it has the ClientHello.
var errHelloRead = errors.New("egress: ClientHello read")

// errHelloTooLong ends a ClientHello over maxHello bytes.
var errHelloTooLong = fmt.Errorf("egress: no complete ClientHello in the first %d bytes", maxHello)

// pinned is what pin found at the start of a tunnel.
type pinned int

const (
	pinnedTLS   pinned = iota // a ClientHello naming the tunnel's host
	pinnedHTTP                // a plain HTTP request
	pinnedEmpty               // the client closed the tunnel without a byte
)

// pin reads the start of a tunnel to the name t from c, within
// HeaderTimeout, and decides what it carries (see above). It returns the
// connection to go on with (what it read, then the rest of c) or a denial
// to audit; the client has been told nothing.
func (p *Proxy) pin(c net.Conn, t target) (net.Conn, pinned, *denial) {
	c.SetReadDeadline(time.Now().Add(p.cfg.HeaderTimeout))
	defer c.SetReadDeadline(time.Time{})
	br := bufio.NewReader(c)
	first, err := br.Peek(1)
	switch {
	case err == io.EOF:
		return nil, pinnedEmpty, nil
	case err != nil:
		return nil, 0, p.pinError(t, err)
	case first[0] == recordTypeHandshake:
		rec, d := p.readHello(c, br, t)
		if d != nil {
			refuseTLS(c)
			return nil, 0, d
		}
		return &prefixConn{Conn: c, r: io.MultiReader(bytes.NewReader(rec), br)}, pinnedTLS, nil
	}
	line, _ := br.Peek(maxMethod + 1)
	if !startsRequestLine(line) {
		return nil, 0, deny(fmt.Sprintf("the tunnel to %s carries neither TLS nor HTTP (a tunnel to a name must start with a TLS ClientHello or an HTTP request)", t), "")
	}
	return &prefixConn{Conn: c, r: br}, pinnedHTTP, nil
}

// readHello reads the ClientHello from br (c's buffered bytes) with the
// TLS parser of crypto/tls, which writes nothing back, and checks its
// server name against t. It returns every byte it read, to be replayed
// upstream.
func (p *Proxy) readHello(c net.Conn, br *bufio.Reader, t target) ([]byte, *denial) {
	if !p.buf.take(helloCost) {
		return nil, &denial{status: http.StatusTooManyRequests, decision: DecisionLimit,
			reason: fmt.Sprintf("buffer limit reached: reading a ClientHello needs %d bytes, over the proxy's buffer budget (MaxBuffer %d bytes) with what it already holds", helloCost, p.buf.max)}
	}
	defer p.buf.give(helloCost)
	hc := &helloConn{Conn: c, r: br}
	var sni string
	var exts []uint16
	seen := false
	err := tls.Server(hc, &tls.Config{
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			seen, sni, exts = true, h.ServerName, slices.Clone(h.Extensions)
			return nil, errHelloRead
		},
	}).Handshake()
	switch {
	case !seen && errors.Is(err, errHelloTooLong):
		return nil, deny(fmt.Sprintf("the tunnel to %s: no complete TLS ClientHello in its first %d bytes", t, maxHello), "")
	case !seen && isTimeoutErr(err):
		return nil, p.pinError(t, err)
	case !seen:
		return nil, deny(fmt.Sprintf("the tunnel to %s: its TLS ClientHello cannot be read: %v", t, err), "")
	case slices.Contains(exts, extensionECH) || slices.Contains(exts, extensionESNI):
		return nil, deny(fmt.Sprintf("the tunnel to %s: an encrypted ClientHello hides the server name, which must be %s (turn ECH off in the client)", t, t.name), "")
	case sni == "":
		return nil, deny(fmt.Sprintf("the tunnel to %s: the TLS ClientHello names no server (SNI), which must be %s", t, t.name), "")
	}
	if ht, err := parseHost(sni); err != nil || ht.addr.IsValid() || ht.name != t.name {
		return nil, deny(fmt.Sprintf("the tunnel to %s: TLS server name (SNI) %q is not %s; a tunnel only reaches the host it was granted for (CONNECT to that name instead)", t, sni, t.name), "")
	}
	return hc.rec.Bytes(), nil
}

// pinError is the denial for a tunnel whose start could not be read.
func (p *Proxy) pinError(t target, err error) *denial {
	if isTimeoutErr(err) {
		return &denial{status: http.StatusRequestTimeout, decision: DecisionLimit,
			reason: fmt.Sprintf("the tunnel to %s sent no complete TLS ClientHello or HTTP request within %v (HeaderTimeout)", t, p.cfg.HeaderTimeout)}
	}
	return &denial{status: http.StatusBadRequest, decision: DecisionError, reason: fmt.Sprintf("reading the tunnel to %s: %v", t, err)}
}

// helloConn is a tunnel's client side as the ClientHello parser sees it:
// reads come from r and are recorded, at most maxHello bytes; writes (the
// alert the parser sends when it is stopped) go nowhere.
type helloConn struct {
	net.Conn
	r   *bufio.Reader
	rec bytes.Buffer
}

func (c *helloConn) Read(b []byte) (int, error) {
	room := maxHello - c.rec.Len()
	if room <= 0 {
		return 0, errHelloTooLong
	}
	n, err := c.r.Read(b[:min(len(b), room)])
	c.rec.Write(b[:n])
	return n, err
}

func (c *helloConn) Write(b []byte) (int, error) { return len(b), nil }

func (c *helloConn) Close() error { return nil }

// maxMethod is the longest request method recognised at the start of a
// plain-HTTP tunnel.
const maxMethod = 16

// startsRequestLine reports whether b starts like an HTTP/1 request line:
// a method of upper-case letters, then a space.
func startsRequestLine(b []byte) bool {
	for i, c := range b {
		switch {
		case c == ' ':
			return i > 0
		case c < 'A' || c > 'Z':
			return false
		}
	}
	return false
}

// refuseTLS tells a TLS client its tunnel was refused: a fatal
// access_denied alert, so the client's error says so instead of reporting
// an unexpected end of stream.
func refuseTLS(c net.Conn) {
	c.SetWriteDeadline(time.Now().Add(time.Second))
	c.Write([]byte{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x31})
}

// serveTunnel serves the requests read from conn, the client side of a
// tunnel (decrypted when intercepted), each forwarded as a checked request
// to tun's destination, until the client closes it or it idles. r is the
// CONNECT.
func (p *Proxy) serveTunnel(r *http.Request, conn net.Conn, tun *tunnel) {
	l := newOneConnListener(conn)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p.stallWrites(w)
			defer p.stallReads(w)
			defer p.stallWrites(w)
			p.forward(w, r, tun)
		}),
		ReadHeaderTimeout: p.cfg.HeaderTimeout,
		IdleTimeout:       p.cfg.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          p.srv.ErrorLog,
		// Requests read inside the tunnel report to the audit sink of the
		// client connection that carries it.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(r.Context()) },
	}
	srv.Serve(l)
}
