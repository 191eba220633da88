package egress

import (
	"bytes"
	"compress/gzip"
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
	"strings"
	"sync"
	"sync/atomic"
	"time"
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
	errMu   sync.Mutex
	err     *denial
}

type stateKey struct{}

func stateFrom(ctx context.Context) *reqState {
	st, _ := ctx.Value(stateKey{}).(*reqState)
	return st
}

// tunnel is an intercepted CONNECT whose requests are being read.
type tunnel struct{ t target }

// forward handles one request in absolute form (tun == nil) or one request
// read inside an intercepted tunnel.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, tun *tunnel) {
	ev := Event{Method: r.Method, Intercepted: tun != nil}
	var t target
	var scheme string
	var err error
	if tun == nil {
		t, scheme, err = parseTarget(r.Method, r.RequestURI)
	} else {
		t, scheme, err = tun.t, "https", checkTunnelRequest(r, tun.t)
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
	ctx := context.WithValue(r.Context(), stateKey{}, st)
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) { st.addr.Store(info.Conn.RemoteAddr().String()) },
	})
	out := r.Clone(ctx)
	out.URL = &url.URL{Scheme: scheme, Host: urlHost(t, scheme), Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	out.Host = ""
	out.RequestURI = ""
	used, d := p.substitute(out, t, scheme)
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
	p.rp.ServeHTTP(w, out)
}

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

// checkTunnelRequest checks that a request read inside an intercepted
// tunnel to t names t (and nothing else) as its host.
func checkTunnelRequest(r *http.Request, t target) error {
	if !strings.HasPrefix(r.RequestURI, "/") {
		rt, scheme, err := parseTarget(r.Method, r.RequestURI)
		if err != nil {
			return err
		}
		if scheme != "https" || rt != t {
			return fmt.Errorf("request for %s inside the tunnel to %s", rt, t)
		}
	}
	h, port := r.Host, "443"
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
// secrets bound to t, and refuses placeholders of secrets not bound to t
// (or bound, but not to be sent over plain HTTP).
func (p *Proxy) substitute(out *http.Request, t target, scheme string) ([]*secret, *denial) {
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

	var body []byte
	kind := bodyKind(out.Header.Get("Content-Type"))
	ce := strings.ToLower(out.Header.Get("Content-Encoding"))
	scanBody := kind != "" && (ce == "" || ce == "identity") && out.Body != nil && out.Body != http.NoBody &&
		out.ContentLength <= p.cfg.MaxBodyScan
	if scanBody {
		b, err := io.ReadAll(io.LimitReader(out.Body, p.cfg.MaxBodyScan+1))
		if err != nil {
			return nil, &denial{status: http.StatusBadRequest, decision: DecisionError, reason: "reading the request body: " + err.Error()}
		}
		if int64(len(b)) > p.cfg.MaxBodyScan {
			// Too large to scan: pass it on untouched.
			out.Body = struct {
				io.Reader
				io.Closer
			}{io.MultiReader(bytes.NewReader(b), out.Body), out.Body}
			scanBody = false
		} else {
			body = b
			look(string(b))
		}
	}
	var used []*secret
	for _, sec := range p.secrets {
		if !present[sec] {
			continue
		}
		if !sec.boundTo(t) {
			return nil, deny(fmt.Sprintf("the placeholder of secret %s was sent to %s, which it is not bound to", sec.Name, t),
				"bind secret "+sec.Name+" to "+t.String())
		}
		if scheme != "https" && !sec.AllowHTTP {
			return nil, deny(fmt.Sprintf("secret %s is only sent over https, not in plain http to %s", sec.Name, t), "")
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
	if scanBody {
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

// rewrite is the ReverseProxy hook; the request was prepared by forward.
// For hosts with a bound secret it refuses compression it could not
// inspect and protocol upgrades it could not redact.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	st := stateFrom(pr.Out.Context())
	pr.Out.Host = ""
	if st != nil && len(st.bound) > 0 {
		pr.Out.Header.Del("Accept-Encoding")
		pr.Out.Header.Del("Upgrade")
		pr.Out.Header.Del("Connection")
	}
}

// modifyResponse counts the response body and, for hosts with a bound
// secret, redacts the secret's value from the headers and body.
func (p *Proxy) modifyResponse(res *http.Response) error {
	st := stateFrom(res.Request.Context())
	if st == nil {
		return errors.New("egress: lost request state")
	}
	st.status.Store(int64(res.StatusCode))
	if len(st.bound) > 0 {
		if res.StatusCode == http.StatusSwitchingProtocols {
			return &denial{status: http.StatusBadGateway, decision: DecisionDeny, reason: "protocol upgrades are refused for hosts with a bound secret"}
		}
		for k, vs := range res.Header {
			for i, v := range vs {
				res.Header[k][i] = redactString(v, st.bound)
			}
		}
		for k, vs := range res.Trailer {
			for i, v := range vs {
				res.Trailer[k][i] = redactString(v, st.bound)
			}
		}
		switch ce := strings.ToLower(strings.TrimSpace(res.Header.Get("Content-Encoding"))); ce {
		case "", "identity":
		case "gzip", "x-gzip":
			zr, err := gzip.NewReader(res.Body)
			if err != nil {
				return &denial{status: http.StatusBadGateway, decision: DecisionError, reason: "bad gzip response: " + err.Error()}
			}
			res.Body = struct {
				io.Reader
				io.Closer
			}{zr, res.Body}
			res.Header.Del("Content-Encoding")
		default:
			return &denial{status: http.StatusBadGateway, decision: DecisionError,
				reason: fmt.Sprintf("response Content-Encoding %q cannot be inspected for secrets", ce)}
		}
		res.Body = newRedactor(res.Body, st.bound)
		res.ContentLength = -1
		res.Header.Del("Content-Length")
	}
	res.Body = &countReader{r: res.Body, n: &st.down, eof: &st.bodyEOF}
	return nil
}

// upstreamError answers a failure to reach the destination.
func (p *Proxy) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	st := stateFrom(r.Context())
	var d *denial
	var le *errLimit
	switch {
	case errors.As(err, &le):
		d = le.d
	case errors.As(err, &d):
	case p.bytesExceeded():
		d = p.limitDenial("bytes")
	case errors.Is(err, context.Canceled):
		d = &denial{status: 499, decision: DecisionError, reason: "client went away"}
	default:
		d = &denial{status: http.StatusBadGateway, decision: DecisionError, reason: "upstream: " + err.Error()}
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
// the tunnel as a new, checked request over TLS to the real host.
func (p *Proxy) intercept(w http.ResponseWriter, r *http.Request, t target, ev *Event) {
	ev.Intercepted = true
	leaf, err := p.ca.leaf(t.host())
	if err != nil {
		p.finishDenied(r.Context(), w, ev, &denial{status: http.StatusInternalServerError, decision: DecisionError, reason: err.Error()})
		return
	}
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
	if _, err := io.WriteString(client, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		ev.Decision, ev.Reason = DecisionError, err.Error()
		p.emit(r.Context(), *ev)
		return
	}
	tc := tls.Server(bufConn(client, buf), &tls.Config{
		Certificates: []tls.Certificate{*leaf},
		NextProtos:   []string{"http/1.1"},
		MinVersion:   tls.VersionTLS12,
	})
	hctx, cancel := context.WithTimeout(r.Context(), p.cfg.DialTimeout)
	err = tc.HandshakeContext(hctx)
	cancel()
	if err != nil {
		ev.Decision, ev.Reason = DecisionError, "TLS handshake with the sandbox failed (does it trust the egress CA?): "+err.Error()
		p.emit(r.Context(), *ev)
		return
	}
	tun := &tunnel{t: t}
	l := newOneConnListener(tc)
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { p.forward(w, r, tun) }),
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          p.srv.ErrorLog,
		// Requests read inside the tunnel report to the audit sink of the
		// client connection that carries it.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(r.Context()) },
	}
	srv.Serve(l)
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
