package egress

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skillbox-dev/skillbox/audit"
)

// reqState is one forwarded request's state, carried in its context from
// the handler to the transport's dialer and the response hooks.
type reqState struct {
	t       target
	scheme  string
	addrs   []netip.Addr
	bound   []*secret // secrets bound to t (redacted in responses)
	ev      Event
	addr    atomic.Value // string: the upstream address used
	up      atomic.Int64
	down    atomic.Int64
	status  atomic.Int64
	bodyEOF atomic.Bool
	held    atomic.Int64 // bytes of the buffer budget held (Proxy.hold)
	errMu   sync.Mutex
	err     *denial
	used    []string // secrets substituted while the body streamed
}

type stateKey struct{}

func stateFrom(ctx context.Context) *reqState {
	st, _ := ctx.Value(stateKey{}).(*reqState)
	return st
}

// tunnel is a CONNECT whose requests are being read: intercepted TLS
// (scheme "https") or plain HTTP (scheme "http").
type tunnel struct {
	t      target
	scheme string
}

// forward handles one request in absolute form (tun == nil) or one request
// read inside a tunnel.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, tun *tunnel) {
	if !p.begin(r.Context()) {
		refuse(w, p.eventsDenial())
		return
	}
	ev := Event{Egress: audit.Egress{Method: r.Method, Intercepted: tun != nil && tun.scheme == "https"}}
	var t target
	var scheme string
	var err error
	if tun == nil {
		t, scheme, err = parseTarget(r.Method, r.RequestURI)
	} else {
		t, scheme, err = tun.t, tun.scheme, checkTunnelRequest(r, tun)
	}
	if err != nil {
		p.finishDenied(r.Context(), w, &ev, &denial{status: http.StatusBadRequest, decision: DecisionDeny, reason: err.Error()})
		return
	}
	ev.Host, ev.Port = t.host(), t.port
	addrs, d := p.authorize(r.Context(), t)
	if d != nil {
		p.finishDenied(r.Context(), w, &ev, d)
		return
	}
	st := &reqState{t: t, scheme: scheme, addrs: addrs, bound: p.bound(t)}
	defer p.release(st)
	ctx := context.WithValue(r.Context(), stateKey{}, st)
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) { st.addr.Store(info.Conn.RemoteAddr().String()) },
	})
	out := r.Clone(ctx)
	out.URL = &url.URL{Scheme: scheme, Host: urlHost(t, scheme), Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	out.Host = ""
	out.RequestURI = ""
	if out.Body != nil && out.Body != http.NoBody {
		out.Body = &stallReader{r: out.Body, rc: http.NewResponseController(w), d: p.cfg.StallTimeout, st: st}
	}
	used, d := p.substitute(out, st)
	if d != nil {
		p.finishDenied(r.Context(), w, &ev, d)
		return
	}
	for _, s := range used {
		ev.Secrets = append(ev.Secrets, s.Name)
	}
	if out.Body != nil && out.Body != http.NoBody {
		out.Body = &countReader{r: out.Body, n: &st.up}
	}
	st.ev = ev
	defer p.finishForward(ctx, st)
	pw := &progressWriter{ResponseWriter: w, rc: http.NewResponseController(w), d: p.cfg.StallTimeout, bound: st.bound}
	p.rp.ServeHTTP(pw, out)
	// Trailers are written once the handler returns, from the header map:
	// redact them now, including those announced only after the body.
	redactHeader(w.Header(), st.bound)
}

// progressWriter is the response writer a forwarded request is answered
// through. Each write gives the client StallTimeout to take it, and for a
// host with a bound secret every header it sends, 1xx informational ones
// included (ReverseProxy forwards those from its own Got1xxResponse
// trace, past ModifyResponse), is redacted first.
type progressWriter struct {
	http.ResponseWriter
	rc    *http.ResponseController
	d     time.Duration
	bound []*secret
	sent  bool // the final header was sent
}

func (w *progressWriter) WriteHeader(code int) {
	redactHeader(w.Header(), w.bound)
	if code >= 200 {
		w.sent = true
	}
	w.rc.SetWriteDeadline(time.Now().Add(w.d))
	w.ResponseWriter.WriteHeader(code)
}

func (w *progressWriter) Write(b []byte) (int, error) {
	if !w.sent {
		redactHeader(w.Header(), w.bound)
		w.sent = true
	}
	w.rc.SetWriteDeadline(time.Now().Add(w.d))
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController (flushes) reach the server's writer.
func (w *progressWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// stallReader reads a request body from the client, giving each read
// StallTimeout to make progress; a trickle that keeps moving is never cut.
type stallReader struct {
	r  io.ReadCloser
	rc *http.ResponseController
	d  time.Duration
	st *reqState
}

func (s *stallReader) Read(b []byte) (int, error) {
	s.rc.SetReadDeadline(time.Now().Add(s.d))
	n, err := s.r.Read(b)
	if isTimeoutErr(err) {
		s.st.fail(&denial{status: http.StatusRequestTimeout, decision: DecisionLimit,
			reason: fmt.Sprintf("the request body made no progress for %v (StallTimeout)", s.d)})
	}
	if err != nil {
		// The server reads on after the body (to notice the client going
		// away); that read must not inherit the deadline.
		s.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

func (s *stallReader) Close() error { return s.r.Close() }

// finishForward audits a forwarded request once it is over (it also runs
// when the response copy is aborted).
func (p *Proxy) finishForward(ctx context.Context, st *reqState) {
	ev := st.ev
	ev.Status = int(st.status.Load())
	if a, ok := st.addr.Load().(string); ok {
		ev.Addr = a
	}
	ev.BytesUp, ev.BytesDown = st.up.Load(), st.down.Load()
	st.errMu.Lock()
	d := st.err
	for _, n := range st.used {
		if !slices.Contains(ev.Secrets, n) {
			ev.Secrets = append(ev.Secrets, n)
		}
	}
	st.errMu.Unlock()
	switch {
	case d != nil:
		ev.Decision, ev.Reason, ev.Grant = d.decision, d.reason, d.grant
		if d.status != 0 {
			ev.Status = d.status
		}
	case !st.bodyEOF.Load() && p.bytesExceeded():
		ev.Decision, ev.Reason = DecisionLimit, p.limitDenial("bytes").reason
	default:
		ev.Decision = DecisionAllow
	}
	p.emit(ctx, ev)
}

func (st *reqState) fail(d *denial) {
	st.errMu.Lock()
	if st.err == nil {
		st.err = d
	}
	st.errMu.Unlock()
}

// urlHost is t as the host of a URL of scheme, without a default port.
func urlHost(t target, scheme string) string {
	if scheme == "http" && t.port == 80 || scheme == "https" && t.port == 443 {
		if t.addr.Is6() {
			return "[" + t.host() + "]"
		}
		return t.host()
	}
	return t.String()
}

// checkTunnelRequest checks that a request read inside a tunnel names the
// tunnel's destination (and nothing else) as its host.
func checkTunnelRequest(r *http.Request, tun *tunnel) error {
	t := tun.t
	if !strings.HasPrefix(r.RequestURI, "/") {
		rt, scheme, err := parseTarget(r.Method, r.RequestURI)
		if err != nil {
			return err
		}
		if scheme != tun.scheme || rt != t {
			return fmt.Errorf("request for %s://%s inside the %s tunnel to %s", scheme, rt, tun.scheme, t)
		}
	}
	h, port := r.Host, "443"
	if tun.scheme == "http" {
		port = "80"
	}
	if hh, pp, err := net.SplitHostPort(r.Host); err == nil {
		h, port = hh, pp
	}
	ht, err := parseAuthority(h, port, true)
	if err != nil {
		return fmt.Errorf("Host header %q: %v", r.Host, err)
	}
	if ht != t {
		return fmt.Errorf("Host header %q does not name the tunnel's destination %s", r.Host, t)
	}
	return nil
}

// substitute replaces placeholders in the request with the values of the
// secrets bound to its host, and refuses placeholders of secrets not bound
// to it (or bound, but not to be sent over plain HTTP). A JSON, form or
// text body up to MaxBodyScan is read whole first (held against
// MaxBuffer); a larger one is substituted as it streams.
func (p *Proxy) substitute(out *http.Request, st *reqState) ([]*secret, *denial) {
	if len(p.secrets) == 0 {
		return nil, nil
	}
	present := map[*secret]bool{}
	look := func(s string) {
		for _, sec := range p.secrets {
			if !present[sec] && strings.Contains(s, sec.Placeholder) {
				present[sec] = true
			}
		}
	}
	for _, vs := range out.Header {
		for _, v := range vs {
			look(v)
		}
	}
	escPath := out.URL.EscapedPath()
	look(escPath)
	look(out.URL.RawQuery)

	kind := bodyKind(out.Header.Get("Content-Type"))
	_, codings := contentCodings(out.Header)
	scan := kind != "" && len(codings) == 0 && out.Body != nil && out.Body != http.NoBody
	body, streamed, d := p.readBody(out, st, scan)
	if d != nil {
		return nil, d
	}
	if body != nil {
		look(string(body))
	}
	var used []*secret
	for _, sec := range p.secrets {
		if !present[sec] {
			continue
		}
		if d := p.mayUse(sec, st); d != nil {
			return nil, d
		}
		used = append(used, sec)
	}
	for _, sec := range used {
		for k, vs := range out.Header {
			for i, v := range vs {
				out.Header[k][i] = strings.ReplaceAll(v, sec.Placeholder, sec.Value)
			}
		}
		if strings.Contains(escPath, sec.Placeholder) {
			escPath = strings.ReplaceAll(escPath, sec.Placeholder, encodeFor(sec.Value, "path"))
			if pth, err := url.PathUnescape(escPath); err == nil {
				out.URL.Path, out.URL.RawPath = pth, escPath
			}
		}
		out.URL.RawQuery = strings.ReplaceAll(out.URL.RawQuery, sec.Placeholder, encodeFor(sec.Value, "query"))
		if body != nil {
			body = bytes.ReplaceAll(body, []byte(sec.Placeholder), []byte(encodeFor(sec.Value, kind)))
		}
	}
	switch {
	case streamed:
		if d := p.streamBody(out, st, kind); d != nil {
			return nil, d
		}
	case body != nil:
		out.Body = io.NopCloser(bytes.NewReader(body))
		out.ContentLength = int64(len(body))
		out.TransferEncoding = nil
		out.Header.Del("Content-Length")
		if len(body) == 0 {
			out.Body = http.NoBody
		}
	}
	return used, nil
}

// mayUse refuses a secret's placeholder in a request it may not be
// substituted into.
func (p *Proxy) mayUse(sec *secret, st *reqState) *denial {
	if !sec.boundTo(st.t) {
		return deny(fmt.Sprintf("the placeholder of secret %s was sent to %s, which it is not bound to", sec.Name, st.t),
			"bind secret "+sec.Name+" to "+st.t.String())
	}
	if st.scheme != "https" && !sec.AllowHTTP {
		return deny(fmt.Sprintf("secret %s is only sent over https, not in plain http to %s", sec.Name, st.t), "")
	}
	return nil
}

// readBody reads a body to be scanned whole if it is at most MaxBodyScan
// bytes. A longer one is left to stream (streamed), with what was read
// put back in front of it.
func (p *Proxy) readBody(out *http.Request, st *reqState, scan bool) (body []byte, streamed bool, d *denial) {
	if !scan {
		return nil, false, nil
	}
	if out.ContentLength > p.cfg.MaxBodyScan {
		return nil, true, nil
	}
	want := p.cfg.MaxBodyScan + 1
	if out.ContentLength >= 0 {
		want = out.ContentLength + 1
	}
	if d := p.hold(st, want, "a request body read whole"); d != nil {
		return nil, false, d
	}
	b, err := io.ReadAll(io.LimitReader(out.Body, want))
	if err != nil {
		return nil, false, &denial{status: http.StatusBadRequest, decision: DecisionError, reason: "reading the request body: " + err.Error()}
	}
	if int64(len(b)) > p.cfg.MaxBodyScan {
		out.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(b), out.Body), out.Body}
		return nil, true, nil
	}
	return b, false, nil
}

// streamBody substitutes placeholders in a body as it is sent: the
// placeholders of secrets that may be used here become their values,
// encoded for kind; any other ends the request before it is sent (the
// host sees the body up to it, never the placeholder). The body keeps its
// length unless a substitution may change it (then it is sent chunked).
func (p *Proxy) streamBody(out *http.Request, st *reqState, kind string) *denial {
	var pats []pattern
	sameLen := true // no substitution changes the body's length
	for _, sec := range p.secrets {
		pat := pattern{from: []byte(sec.Placeholder)}
		if d := p.mayUse(sec, st); d != nil {
			pat.hit = func() error { st.fail(d); return d }
		} else {
			name := sec.Name
			pat.to = []byte(encodeFor(sec.Value, kind))
			sameLen = sameLen && len(pat.to) == len(pat.from)
			pat.hit = func() error {
				st.errMu.Lock()
				if !slices.Contains(st.used, name) {
					st.used = append(st.used, name)
				}
				st.errMu.Unlock()
				return nil
			}
		}
		pats = append(pats, pat)
	}
	r := newReplacer(out.Body, pats)
	if d := p.hold(st, r.cost(), "substituting in a streamed request body"); d != nil {
		return d
	}
	out.Body = r
	if !sameLen {
		out.ContentLength = -1
		out.Header.Del("Content-Length")
	}
	return nil
}

// rewrite is the ReverseProxy hook; the request was prepared by forward.
// No host is offered cleartext HTTP/2 (h2c): after the upgrade its streams
// could name any host, past the check of this request. A host with a
// bound secret is asked for an uncompressed answer, gets no ranges
// (partial answers could piece an echoed value together past the
// redaction) and no protocol upgrade.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	st := stateFrom(pr.Out.Context())
	pr.Out.Host = ""
	if upgradesToH2C(pr.Out.Header) {
		pr.Out.Header.Del("Upgrade")
		pr.Out.Header.Del("Connection")
		pr.Out.Header.Del("HTTP2-Settings")
	}
	if st != nil && len(st.bound) > 0 {
		h := pr.Out.Header
		h.Set("Accept-Encoding", "identity")
		h.Del("Range")
		h.Del("If-Range")
		h.Del("Upgrade")
		h.Del("Connection")
	}
}

// upgradesToH2C reports whether h offers an upgrade to h2c.
func upgradesToH2C(h http.Header) bool {
	for _, v := range h.Values("Upgrade") {
		for p := range strings.SplitSeq(v, ",") {
			name, _, _ := strings.Cut(strings.TrimSpace(p), "/")
			if strings.EqualFold(name, "h2c") {
				return true
			}
		}
	}
	return false
}

// modifyResponse counts the response body and, for hosts with a bound
// secret, refuses what cannot be redacted and redacts the secret's value
// from the headers and body.
func (p *Proxy) modifyResponse(res *http.Response) error {
	st := stateFrom(res.Request.Context())
	if st == nil {
		return errors.New("egress: lost request state")
	}
	st.status.Store(int64(res.StatusCode))
	st.errMu.Lock()
	failed := st.err
	st.errMu.Unlock()
	if failed != nil {
		return failed // the request body was cut while it streamed
	}
	if len(st.bound) > 0 {
		if err := p.redactResponse(res, st); err != nil {
			return err
		}
	}
	res.Body = &countReader{r: res.Body, n: &st.down, eof: &st.bodyEOF}
	return nil
}

// redactResponse makes a bound host's response safe to pass on.
func (p *Proxy) redactResponse(res *http.Response, st *reqState) *denial {
	refused := func(why string) *denial {
		return &denial{status: http.StatusBadGateway, decision: DecisionDeny, reason: why}
	}
	switch res.StatusCode {
	case http.StatusSwitchingProtocols:
		return refused("protocol upgrades are refused for hosts with a bound secret")
	case http.StatusPartialContent:
		return refused("partial (206) responses are refused for hosts with a bound secret: ranges could piece an echoed secret together")
	}
	redactHeader(res.Header, st.bound)
	redactHeader(res.Trailer, st.bound)
	if d := p.decodeBody(res, st); d != nil {
		return d
	}
	red := newRedactor(res.Body, st.bound)
	if d := p.hold(st, red.cost(), "redacting a response"); d != nil {
		return d
	}
	res.Body = red
	res.ContentLength = -1
	res.Header.Del("Content-Length")
	return nil
}

// upstreamError answers a failure to reach the destination.
func (p *Proxy) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	st := stateFrom(r.Context())
	var d *denial
	var le *errLimit
	if st != nil {
		st.errMu.Lock()
		d = st.err
		st.errMu.Unlock()
	}
	switch {
	case d != nil:
	case errors.As(err, &le):
		d = le.d
	case errors.As(err, &d):
	case p.bytesExceeded():
		d = p.limitDenial("bytes")
	case errors.Is(err, context.Canceled):
		d = &denial{status: 499, decision: DecisionError, reason: "client went away"}
	case strings.Contains(err.Error(), "server response headers exceeded"):
		// net/http's error for MaxResponseHeaderBytes, which has no
		// variable of its own.
		d = &denial{status: http.StatusBadGateway, decision: DecisionError,
			reason: fmt.Sprintf("upstream: the response header is over %d KiB, the most the proxy reads", maxHeaderBytes>>10)}
	default:
		d = &denial{status: http.StatusBadGateway, decision: DecisionError, reason: "upstream: " + err.Error()}
	}
	if st != nil && len(st.bound) > 0 {
		// Transport errors may quote what the host sent.
		dd := *d
		dd.reason = redactString(d.reason, st.bound)
		d = &dd
	}
	if st != nil {
		st.fail(d)
	}
	if d.status != 499 {
		refuse(w, d)
	}
}

// transportDial dials for the shared Transport: only the addresses the
// request's check produced, and only for the destination it checked.
func (p *Proxy) transportDial(ctx context.Context, network, addr string) (net.Conn, error) {
	st := stateFrom(ctx)
	if st == nil {
		return nil, errors.New("egress: dial without a checked request")
	}
	if addr != st.t.String() {
		return nil, fmt.Errorf("egress: dial to %s for a request checked for %s", addr, st.t)
	}
	c, err := p.dial(ctx, st.addrs, st.t.port)
	if err != nil {
		return nil, err
	}
	return c, nil
}

type countReader struct {
	r   io.ReadCloser
	n   *atomic.Int64
	eof *atomic.Bool
}

func (c *countReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	if err == io.EOF && c.eof != nil {
		c.eof.Store(true)
	}
	return n, err
}

func (c *countReader) Close() error { return c.r.Close() }

// intercept terminates TLS for a CONNECT to a host with a bound secret
// using a leaf of the ephemeral CA, and forwards each request read inside
// the tunnel as a new, checked request over TLS to the real host. The
// leaf is minted (or taken from the cache) once a ClientHello has come.
func (p *Proxy) intercept(w http.ResponseWriter, r *http.Request, t target, ev *Event) {
	ev.Intercepted = true
	client, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		ev.Decision, ev.Reason = DecisionError, "hijack: "+err.Error()
		p.emit(r.Context(), *ev)
		return
	}
	if !p.track(client) {
		client.Close()
		return
	}
	defer p.untrack(client)
	client.SetDeadline(time.Time{}) // the outer server's; the inner one sets its own
	if _, err := io.WriteString(client, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		ev.Decision, ev.Reason = DecisionError, err.Error()
		p.emit(r.Context(), *ev)
		return
	}
	tc := tls.Server(bufConn(client, buf), &tls.Config{
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return p.ca.leaf(t.host())
		},
		NextProtos: []string{"http/1.1"},
		MinVersion: tls.VersionTLS12,
	})
	hctx, cancel := context.WithTimeout(r.Context(), p.cfg.DialTimeout)
	err = tc.HandshakeContext(hctx)
	cancel()
	if err != nil {
		ev.Decision, ev.Reason = DecisionError, "TLS handshake with the sandbox failed (does it trust the egress CA?): "+err.Error()
		p.emit(r.Context(), *ev)
		return
	}
	p.serveTunnel(r, tc, &tunnel{t: t, scheme: "https"})
	ev.Decision = DecisionAllow
	p.emit(r.Context(), *ev)
}

// oneConnListener hands out one connection, then blocks until it is closed.
type oneConnListener struct {
	mu   sync.Mutex
	conn net.Conn
	done chan struct{}
	addr net.Addr
}

func newOneConnListener(c net.Conn) *oneConnListener {
	l := &oneConnListener{done: make(chan struct{}), addr: c.LocalAddr()}
	l.conn = &closeNotifyConn{Conn: c, done: l.done}
	return l
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	c := l.conn
	l.conn = nil
	l.mu.Unlock()
	if c != nil {
		return c, nil
	}
	<-l.done
	return nil, net.ErrClosed
}

func (l *oneConnListener) Close() error   { return nil }
func (l *oneConnListener) Addr() net.Addr { return l.addr }

type closeNotifyConn struct {
	net.Conn
	once sync.Once
	done chan struct{}
}

func (c *closeNotifyConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { close(c.done) })
	return err
}
