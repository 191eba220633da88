package egress

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/skillbox-dev/skillbox/audit"
)

// maxHeaderBytes bounds a header the proxy reads: a client's request
// header, and a host's response header (Go's default for the latter is
// 10 MiB, held outside MaxBuffer while a client is slow to take it).
const maxHeaderBytes = 64 << 10

// ErrClosed is returned by Serve after Close.
var ErrClosed = errors.New("egress: proxy closed")

// Proxy is the host-side egress proxy of one sandbox. It is safe for
// concurrent use.
type Proxy struct {
	cfg     Config
	secrets []*secret
	ca      *ca // nil when no secret is bound (no interception)

	transport *http.Transport
	rp        *httputil.ReverseProxy
	srv       *http.Server
	dialer    net.Dialer
	sem       chan struct{} // client connections being served
	refusing  chan struct{} // client connections being refused
	buf       budget        // bytes held for clients (MaxBuffer)

	conns  atomic.Int64 // upstream connections opened
	bytes  atomic.Int64 // upstream bytes, both directions
	events atomic.Int64 // requests and tunnels begun (MaxEvents)

	// audit is the sink given to client connections accepted from now on
	// (Config.Audit, replaced by SetAudit); each connection keeps the sink
	// it was accepted with, in its context.
	audit atomic.Pointer[func(Event)]

	mu     sync.Mutex
	closed bool
	hijack map[net.Conn]struct{} // tunnels, closed by Close
}

// New validates cfg and returns a proxy for it. With at least one secret it
// also creates the ephemeral CA used to intercept TLS to bound hosts.
func New(cfg Config) (*Proxy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	cfg.Allow = append([]Rule(nil), cfg.Allow...)
	p := &Proxy{
		cfg:      cfg,
		sem:      make(chan struct{}, cfg.MaxClientConns),
		refusing: make(chan struct{}, 16),
		hijack:   map[net.Conn]struct{}{},
	}
	p.buf.max = cfg.MaxBuffer
	for _, s := range cfg.Secrets {
		p.secrets = append(p.secrets, prepareSecret(s))
	}
	if len(cfg.Secrets) > 0 {
		c, err := newCA(cfg.Secrets, cfg.CAValidity)
		if err != nil {
			return nil, err
		}
		p.ca = c
	}
	roots, err := upstreamRoots(cfg)
	if err != nil {
		return nil, err
	}
	p.transport = &http.Transport{
		Proxy:                  nil,
		DialContext:            p.transportDial,
		TLSClientConfig:        &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    cfg.DialTimeout,
		DisableCompression:     true,
		MaxIdleConns:           32,
		MaxIdleConnsPerHost:    4,
		IdleConnTimeout:        30 * time.Second,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: maxHeaderBytes,
		ForceAttemptHTTP2:      false,
	}
	discard := log.New(io.Discard, "", 0)
	p.rp = &httputil.ReverseProxy{
		Rewrite:        p.rewrite,
		Transport:      p.transport,
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.upstreamError,
		ErrorLog:       discard,
		FlushInterval:  -1,
	}
	p.srv = &http.Server{
		Handler:           http.HandlerFunc(p.serveHTTP),
		ReadHeaderTimeout: cfg.HeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          discard,
		ConnContext: func(ctx context.Context, _ net.Conn) context.Context {
			return context.WithValue(ctx, sinkKey{}, *p.audit.Load())
		},
	}
	p.audit.Store(&cfg.Audit)
	return p, nil
}

// sinkKey is the context key of a client connection's audit sink.
type sinkKey struct{}

// SetAudit replaces the audit sink for client connections accepted from
// now on; connections already accepted keep reporting to the sink they
// were accepted with. A proxy that serves a sequence of calls, one at a
// time (a pre-forked interpreter's), calls it as each call begins, so that
// every event goes to the call whose connection caused it. nil discards.
func (p *Proxy) SetAudit(audit func(Event)) {
	if audit == nil {
		audit = func(Event) {}
	}
	p.audit.Store(&audit)
}

// ResetBudget starts MaxConns and MaxBytes over: the upstream connections
// and bytes used so far no longer count. A proxy serving a sequence of
// calls calls it as each call begins, making the limits per call.
// Exchanges still running keep counting, against the new budget.
func (p *Proxy) ResetBudget() {
	p.conns.Store(0)
	p.bytes.Store(0)
	p.events.Store(0)
}

// begin counts one more request or tunnel against MaxEvents, and reports
// whether it may be served (and audited). The first one past the limit is
// audited as a limit that says later ones are not; those are answered
// 429 without an Event.
func (p *Proxy) begin(ctx context.Context) bool {
	n := p.events.Add(1)
	if n <= int64(p.cfg.MaxEvents) {
		return true
	}
	if n == int64(p.cfg.MaxEvents)+1 {
		d := p.eventsDenial()
		p.emit(ctx, Event{Egress: audit.Egress{Decision: d.decision, Reason: d.reason + "; the next ones are refused and not audited one by one", Status: d.status}})
	}
	return false
}

func (p *Proxy) eventsDenial() *denial {
	return &denial{status: http.StatusTooManyRequests, decision: DecisionLimit,
		reason: fmt.Sprintf("request limit reached (%d requests and tunnels, MaxEvents)", p.cfg.MaxEvents)}
}

// Serve serves proxy clients on l until l fails or Close is called (then it
// returns nil). It may be called for several listeners at once. At most
// MaxClientConns client connections are served at a time; one more is
// answered 429, closed and audited as a limit.
func (p *Proxy) Serve(l net.Listener) error {
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		l.Close()
		return ErrClosed
	}
	err := p.srv.Serve(&limitListener{Listener: l, p: p})
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops every Serve, closes every client connection and tunnel and
// the idle upstream connections. Exchanges cut short are still audited.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	conns := p.hijack
	p.hijack = map[net.Conn]struct{}{}
	p.mu.Unlock()
	err := p.srv.Close()
	for c := range conns {
		c.Close()
	}
	p.transport.CloseIdleConnections()
	return err
}

// Env returns the environment that points a sandbox's HTTP clients at the
// proxy listening at addr ("127.0.0.1:PORT" as seen inside the sandbox):
// HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and their lower-case forms, and
// SSL_CERT_FILE, REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE and
// NODE_EXTRA_CA_CERTS pointing at Config.CAFile, where the sandbox must
// find CABundle() (with any network grant: the host's roots, the
// operator's CACerts and, when the proxy intercepts TLS, its CA).
func (p *Proxy) Env(addr string) map[string]string {
	u := "http://" + addr
	env := map[string]string{}
	for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"} {
		env[k] = u
	}
	for _, k := range []string{"SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS"} {
		env[k] = p.cfg.CAFile
	}
	return env
}

// Intercepts reports whether the proxy intercepts TLS to some host (that
// is, whether it has secrets and a CA).
func (p *Proxy) Intercepts() bool { return p.ca != nil }

// CACertPEM returns the ephemeral CA's certificate in PEM, or nil when the
// proxy intercepts nothing.
func (p *Proxy) CACertPEM() []byte {
	if p.ca == nil {
		return nil
	}
	return append([]byte(nil), p.ca.pem...)
}

// CABundle returns what the sandbox should trust: Config.TrustBundle (the
// host's CA bundle, then Config.CACerts) followed by the ephemeral CA when
// the proxy intercepts TLS (tunnelled hosts present their real
// certificates, intercepted ones a certificate of the ephemeral CA).
// Without a host bundle it returns the rest and an error saying so. A
// jail builds the TrustBundle part once and adds CACertPEM per proxy.
func (p *Proxy) CABundle() ([]byte, error) {
	base, note := p.cfg.TrustBundle()
	var err error
	if note != "" {
		err = errors.New(note)
	}
	return JoinPEM(base, p.CACertPEM()), err
}

// Stats reports the upstream connections and bytes used so far.
func (p *Proxy) Stats() (conns, bytes int64) { return p.conns.Load(), p.bytes.Load() }

// maxReason and maxAuditMethod bound an audited decision's reason and method,
// which may quote what the sandbox sent (an authority, a Host header, a
// method of its own): a skill's refused requests must not write the audit
// log as fast as it sends bytes.
const (
	maxReason      = 512
	maxAuditMethod = 32
)

// clip is s cut to at most n bytes (at a character's start), saying how
// long it was.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return fmt.Sprintf("%s... (%d bytes)", s[:i], len(s))
}

// emit reports ev to the audit sink of the client connection ctx belongs
// to (or the current one).
func (p *Proxy) emit(ctx context.Context, ev Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	ev.Reason, ev.Method = clip(ev.Reason, maxReason), clip(ev.Method, maxAuditMethod)
	if f, ok := ctx.Value(sinkKey{}).(func(Event)); ok && f != nil {
		f(ev)
		return
	}
	(*p.audit.Load())(ev)
}

func (p *Proxy) bytesExceeded() bool { return p.bytes.Load() > p.cfg.MaxBytes }

// denial is a refusal: the status for the sandbox, the decision, a reason
// and the grant that would allow it.
type denial struct {
	status   int
	decision string
	reason   string
	grant    string
}

func (d *denial) Error() string { return d.reason }

func deny(reason, grant string) *denial {
	return &denial{status: http.StatusForbidden, decision: DecisionDeny, reason: reason, grant: grant}
}

// authorize decides whether t may be reached and returns the addresses the
// proxy may dial for it.
func (p *Proxy) authorize(ctx context.Context, t target) ([]netip.Addr, *denial) {
	allowed := false
	for _, r := range p.cfg.Allow {
		if r.matches(t) {
			allowed = true
			break
		}
	}
	if !allowed {
		why := t.String() + " is not in the allowlist"
		if t.addr.IsValid() {
			why = "address literal " + t.String() + " is not in the allowlist (only listed addresses may be named directly)"
		}
		return nil, deny(why, "--allow-net "+t.String())
	}
	if p.bytesExceeded() {
		return nil, p.limitDenial("bytes")
	}
	if t.addr.IsValid() {
		return []netip.Addr{t.addr}, nil // granted by an address rule
	}
	if addrs, ok := p.cfg.Resolve[t.name]; ok {
		return addrs, nil // granted by --egress-resolve
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.DialTimeout)
	defer cancel()
	found, err := p.cfg.Resolver.LookupNetIP(ctx, "ip", t.name)
	if err != nil || len(found) == 0 {
		msg := "no addresses"
		if err != nil {
			msg = err.Error()
		}
		return nil, &denial{status: http.StatusBadGateway, decision: DecisionError, reason: "cannot resolve " + t.name + ": " + msg}
	}
	var ok []netip.Addr
	var refused netip.Addr
	var class string
	for _, a := range found {
		a = a.Unmap()
		if c := classify(a); c != "" && !p.addrGranted(a, t.port) {
			if class == "" {
				refused, class = a, c
			}
			continue
		}
		ok = append(ok, a)
	}
	if len(ok) == 0 {
		return nil, deny(fmt.Sprintf("%s resolves to %s (%s), which is refused unless granted by address", t.name, refused, class),
			"--egress-resolve "+t.name+"="+refused.String())
	}
	return ok, nil
}

// addrGranted reports whether an address rule grants a, port.
func (p *Proxy) addrGranted(a netip.Addr, port int) bool {
	for _, r := range p.cfg.Allow {
		if r.coversAddr(a, port) {
			return true
		}
	}
	return false
}

func (p *Proxy) limitDenial(what string) *denial {
	d := &denial{status: http.StatusTooManyRequests, decision: DecisionLimit}
	if what == "conns" {
		d.reason = fmt.Sprintf("connection limit reached (%d connections)", p.cfg.MaxConns)
	} else {
		d.reason = fmt.Sprintf("byte limit reached (%d bytes)", p.cfg.MaxBytes)
	}
	return d
}

// errLimit is returned by upstream connections once a limit is hit.
type errLimit struct{ d *denial }

func (e *errLimit) Error() string { return "egress: " + e.d.reason }

// dial connects to the first of addrs that answers on port. Every
// connection counts against MaxConns and its bytes against MaxBytes.
func (p *Proxy) dial(ctx context.Context, addrs []netip.Addr, port int) (*countConn, error) {
	if p.conns.Add(1) > int64(p.cfg.MaxConns) {
		return nil, &errLimit{p.limitDenial("conns")}
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.DialTimeout)
	defer cancel()
	var firstErr error
	for _, a := range addrs {
		c, err := p.dialer.DialContext(ctx, "tcp", netip.AddrPortFrom(a, uint16(port)).String())
		if err == nil {
			return &countConn{Conn: c, p: p}, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}

// countConn counts an upstream connection's bytes, against the proxy's
// budget and its own.
type countConn struct {
	net.Conn
	p        *Proxy
	up, down atomic.Int64
	limited  atomic.Bool
}

func (c *countConn) Write(b []byte) (int, error) {
	if c.p.bytes.Add(int64(len(b))) > c.p.cfg.MaxBytes {
		return 0, c.cut()
	}
	n, err := c.Conn.Write(b)
	c.up.Add(int64(n))
	return n, err
}

func (c *countConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		if c.p.bytes.Add(int64(n)) > c.p.cfg.MaxBytes {
			return 0, c.cut()
		}
		c.down.Add(int64(n))
	}
	return n, err
}

func (c *countConn) cut() error {
	c.limited.Store(true)
	c.Conn.Close()
	return &errLimit{c.p.limitDenial("bytes")}
}

func (c *countConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// limitListener serves at most MaxClientConns client connections at once
// and refuses the others.
type limitListener struct {
	net.Listener
	p *Proxy
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.p.sem <- struct{}{}:
			return &clientConn{Conn: c, release: func() { <-l.p.sem }}, nil
		default:
			l.p.refuseConn(c)
		}
	}
}

// refuseConn answers a client connection over MaxClientConns with a 429
// and closes it, and audits the refusal. The answer is written in the
// background, at most a few at a time, so that a flood of connections
// cannot hold the accept loop.
func (p *Proxy) refuseConn(c net.Conn) {
	d := &denial{status: http.StatusTooManyRequests, decision: DecisionLimit,
		reason: fmt.Sprintf("client connection limit reached (%d connections at once)", p.cfg.MaxClientConns)}
	if p.begin(context.Background()) {
		p.emit(context.Background(), Event{Egress: audit.Egress{Decision: d.decision, Reason: d.reason, Status: d.status}})
	}
	select {
	case p.refusing <- struct{}{}:
	default:
		c.Close()
		return
	}
	go func() {
		defer func() { <-p.refusing }()
		defer c.Close()
		msg := "skillbox egress: " + d.decision + ": " + d.reason + "\n"
		c.SetDeadline(time.Now().Add(time.Second))
		fmt.Fprintf(c, "HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain; charset=utf-8\r\nX-Skillbox-Egress: limit\r\n"+
			"Connection: close\r\nContent-Length: %d\r\n\r\n%s", len(msg), msg)
		// Read a little of the request so that closing does not reset the
		// connection before the client has read the answer.
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		io.Copy(io.Discard, io.LimitReader(c, 64<<10))
	}()
}

type clientConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *clientConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

func (c *clientConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// refuse answers a denial to the sandbox.
func refuse(w http.ResponseWriter, d *denial) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Skillbox-Egress", d.decision)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(d.status)
	msg := "skillbox egress: " + d.decision + ": " + d.reason + "\n"
	if d.grant != "" {
		msg += "granted by: " + d.grant + "\n"
	}
	io.WriteString(w, msg)
}

func (p *Proxy) serveHTTP(w http.ResponseWriter, r *http.Request) {
	p.stallWrites(w)
	defer p.stallReads(w)
	defer p.stallWrites(w)
	if r.Method == http.MethodConnect {
		p.connect(w, r)
		return
	}
	p.forward(w, r, nil)
}

// connect handles a CONNECT: a tunnel, or interception for a host with a
// bound secret. A tunnel to a name is pinned to it (see pin): it carries
// TLS for that name, or plain HTTP checked request by request.
func (p *Proxy) connect(w http.ResponseWriter, r *http.Request) {
	if !p.begin(r.Context()) {
		refuse(w, p.eventsDenial())
		return
	}
	ev := Event{Egress: audit.Egress{Method: r.Method}}
	t, _, err := parseTarget(r.Method, r.RequestURI)
	if err != nil {
		d := &denial{status: http.StatusBadRequest, decision: DecisionDeny, reason: err.Error()}
		p.finishDenied(r.Context(), w, &ev, d)
		return
	}
	ev.Host, ev.Port = t.host(), t.port
	addrs, d := p.authorize(r.Context(), t)
	if d != nil {
		p.finishDenied(r.Context(), w, &ev, d)
		return
	}
	if p.ca != nil && p.bound(t) != nil {
		p.intercept(w, r, t, &ev)
		return
	}
	up, err := p.dial(r.Context(), addrs, t.port)
	if err != nil {
		p.finishDenied(r.Context(), w, &ev, dialDenial(err))
		return
	}
	ev.Addr = up.RemoteAddr().String()
	client, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		up.Close()
		ev.Decision, ev.Reason = DecisionError, "hijack: "+err.Error()
		p.emit(r.Context(), ev)
		return
	}
	if !p.track(client) {
		client.Close()
		up.Close()
		return
	}
	defer p.untrack(client)
	client.SetDeadline(time.Time{}) // the server's deadlines; the tunnel has its own
	if _, err := io.WriteString(client, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		client.Close()
		up.Close()
		ev.Decision, ev.Reason = DecisionError, err.Error()
		p.emit(r.Context(), ev)
		return
	}
	conn := bufConn(client, buf)
	if !t.addr.IsValid() {
		var kind pinned
		var d *denial
		conn, kind, d = p.pin(conn, t)
		if d != nil {
			up.Close()
			ev.Decision, ev.Reason, ev.Grant, ev.Status = d.decision, d.reason, d.grant, d.status
			p.emit(r.Context(), ev)
			return
		}
		switch kind {
		case pinnedEmpty:
			up.Close()
			ev.Decision = DecisionAllow
			p.emit(r.Context(), ev)
			return
		case pinnedHTTP:
			// Served request by request, as plain-HTTP requests are; the
			// connection dialled for a raw tunnel is not used.
			up.Close()
			ev.Addr = ""
			p.serveTunnel(r, conn, &tunnel{t: t, scheme: "http"})
			ev.Decision = DecisionAllow
			p.emit(r.Context(), ev)
			return
		}
	}
	idle := &idleClock{d: p.cfg.IdleTimeout}
	pipe(&idleConn{Conn: conn, clock: idle}, &idleConn{Conn: up, clock: idle})
	ev.BytesUp, ev.BytesDown = up.up.Load(), up.down.Load()
	ev.Decision = DecisionAllow
	if up.limited.Load() {
		ev.Decision, ev.Reason = DecisionLimit, p.limitDenial("bytes").reason
	}
	p.emit(r.Context(), ev)
}

func dialDenial(err error) *denial {
	var le *errLimit
	if errors.As(err, &le) {
		return le.d
	}
	return &denial{status: http.StatusBadGateway, decision: DecisionError, reason: "connect: " + err.Error()}
}

// finishDenied reports a refusal, then answers it: the call's sink has
// the event before the skill can see the refusal and end its call (the
// Runtime turns a call's denials into its warnings when the call returns).
func (p *Proxy) finishDenied(ctx context.Context, w http.ResponseWriter, ev *Event, d *denial) {
	ev.Decision, ev.Reason, ev.Grant, ev.Status = d.decision, d.reason, d.grant, d.status
	p.emit(ctx, *ev)
	refuse(w, d)
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.hijack[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.hijack, c)
	p.mu.Unlock()
	c.Close()
}

// bufConn returns c reading first what the server had already buffered.
func bufConn(c net.Conn, rw *bufio.ReadWriter) net.Conn {
	if rw == nil || rw.Reader.Buffered() == 0 {
		return c
	}
	return &prefixConn{Conn: c, r: io.MultiReader(io.LimitReader(rw.Reader, int64(rw.Reader.Buffered())), c)}
}

type prefixConn struct {
	net.Conn
	r io.Reader
}

func (c *prefixConn) Read(b []byte) (int, error) { return c.r.Read(b) }

func (c *prefixConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// pipe copies both ways until both directions are done, half-closing as
// each ends; an error in either direction closes both.
func pipe(a, b net.Conn) {
	var wg sync.WaitGroup
	cp := func(dst, src net.Conn) {
		defer wg.Done()
		_, err := io.Copy(dst, src)
		if err != nil {
			a.Close()
			b.Close()
			return
		}
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		} else {
			dst.Close()
		}
	}
	wg.Add(2)
	go cp(a, b)
	go cp(b, a)
	wg.Wait()
	a.Close()
	b.Close()
}

// bound returns the secrets bound to t.
func (p *Proxy) bound(t target) []*secret {
	var out []*secret
	for _, s := range p.secrets {
		if s.boundTo(t) {
			out = append(out, s)
		}
	}
	return out
}

// stallWrites gives the response to the client StallTimeout to make
// progress (it is renewed at each write: see progressWriter).
func (p *Proxy) stallWrites(w http.ResponseWriter) {
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(p.cfg.StallTimeout))
}

// stallReads gives what the server still reads of a request once the
// handler is done (the rest of a body the host did not want) StallTimeout
// to make progress.
func (p *Proxy) stallReads(w http.ResponseWriter) {
	http.NewResponseController(w).SetReadDeadline(time.Now().Add(p.cfg.StallTimeout))
}

// idleClock is when a tunnel last moved a byte, in either direction.
type idleClock struct {
	d    time.Duration
	last atomic.Int64 // unix nanoseconds
}

func (c *idleClock) touch() { c.last.Store(time.Now().UnixNano()) }

func (c *idleClock) idle() bool {
	return time.Since(time.Unix(0, c.last.Load())) >= c.d
}

// idleConn is one side of a tunnel, cut once no byte has moved either way
// for the clock's duration. A read that times out while the other
// direction is busy waits again.
type idleConn struct {
	net.Conn
	clock *idleClock
}

func (c *idleConn) Read(b []byte) (int, error) {
	c.clock.touch()
	for {
		c.Conn.SetReadDeadline(time.Now().Add(c.clock.d))
		n, err := c.Conn.Read(b)
		if n > 0 {
			c.clock.touch()
		}
		if n == 0 && isTimeoutErr(err) && !c.clock.idle() {
			continue
		}
		return n, err
	}
}

func (c *idleConn) Write(b []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(c.clock.d))
	n, err := c.Conn.Write(b)
	if n > 0 {
		c.clock.touch()
	}
	return n, err
}

func (c *idleConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func isTimeoutErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// upstreamRoots is the pool that verifies upstream servers:
// Config.UpstreamRootCAs (nil: the host's roots) plus Config.CACerts.
func upstreamRoots(cfg Config) (*x509.CertPool, error) {
	if len(cfg.CACerts) == 0 {
		return cfg.UpstreamRootCAs, nil
	}
	pool := cfg.UpstreamRootCAs
	if pool == nil {
		sys, err := x509.SystemCertPool()
		if err != nil || sys == nil {
			sys = x509.NewCertPool()
		}
		pool = sys
	} else {
		pool = pool.Clone()
	}
	certs, err := ParseCAs("egress: CACerts", cfg.CACerts)
	if err != nil {
		return nil, err
	}
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}
