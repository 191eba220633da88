package server

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/hostport"
	"github.com/skillbox-dev/skillbox/skill"
)

// MinBodyRate is the slowest average rate, in bytes per second, at which a
// request body may arrive once its BodyReadTimeout grace has passed: a body
// of n bytes must be read within BodyReadTimeout + n/MinBodyRate.
const MinBodyRate = 64 << 10

// MaxHeaderBytes bounds a request's header block (431 beyond it).
const MaxHeaderBytes = 64 << 10

// smallBody is the size up to which a body may use the whole body budget;
// larger ones may hold only three quarters of it, so small calls still get
// through while large bodies fill it.
const smallBody = 64 << 10

// mcpBusyBody is the largest MCP message read while every call slot is
// taken: enough for any message but a tool call's (cancellations,
// initialize, lists), which must still pass when the server is full.
const mcpBusyBody = 64 << 10

// busyError refuses a request for want of capacity: 429 with Retry-After.
type busyError struct{ msg string }

func (e *busyError) Error() string { return e.msg }

// ErrorKind reports Limit.
func (e *busyError) ErrorKind() errdefs.Kind { return errdefs.Limit }

// bodyTimeoutError is a request body that did not arrive in time: 408.
type bodyTimeoutError struct{ msg string }

func (e *bodyTimeoutError) Error() string { return e.msg }

// ErrorKind reports Timeout.
func (e *bodyTimeoutError) ErrorKind() errdefs.Kind { return errdefs.Timeout }

var errSlotsBusy = &busyError{"server busy: all call slots are in use; retry later"}

// budget bounds the bytes of request bodies the server holds at once.
type budget struct {
	mu        sync.Mutex
	used, max int64
}

// reserve takes n bytes for a request that will then hold total bytes; a
// request holding more than smallBody may fill only 3/4 of the budget.
func (b *budget) reserve(n, total int64) bool {
	limit := b.max
	if total > smallBody {
		limit -= b.max / 4
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > limit {
		return false
	}
	b.used += n
	return true
}

func (b *budget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
}

// guardBody bounds every request body: a declared length over MaxBodyBytes
// is refused at once (413), and reads of the body are bounded in size and
// in time (see deadlineBody). The first deadline is set here, so a body no
// handler reads is also drained (by net/http) under one.
func (s *Server) guardBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		if r.ContentLength > s.cfg.MaxBodyBytes {
			w.Header().Set("Connection", "close")
			writeError(w, &errdefs.LimitError{Resource: "request body", Limit: skill.FormatSize(s.cfg.MaxBodyBytes)})
			return
		}
		rc := http.NewResponseController(w)
		start := time.Now()
		// ErrNotSupported only off a real connection (handler tests).
		if rc.SetReadDeadline(start.Add(s.cfg.BodyReadTimeout)) == nil {
			r.Body = &deadlineBody{rc: rc, body: r.Body, start: start, grace: s.cfg.BodyReadTimeout}
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		next.ServeHTTP(w, r)
	})
}

// deadlineBody sets the connection's read deadline before every read of a
// request body: the next bytes must come within grace, and the body so far
// must have come at MinBodyRate after the first grace period. The deadline
// is lifted once the body ends, so it never touches what net/http reads
// afterwards (it watches the idle connection for the client going away).
type deadlineBody struct {
	rc    *http.ResponseController
	body  io.ReadCloser
	start time.Time
	grace time.Duration
	n     int64
	done  bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	if b.done {
		return b.body.Read(p)
	}
	d := time.Now().Add(b.grace)
	if rate := b.start.Add(b.grace + time.Duration(float64(b.n)/MinBodyRate*float64(time.Second))); rate.Before(d) {
		d = rate
	}
	b.rc.SetReadDeadline(d)
	n, err := b.body.Read(p)
	b.n += int64(n)
	switch {
	case err == io.EOF:
		b.done = true
		b.rc.SetReadDeadline(time.Time{})
	case errors.Is(err, os.ErrDeadlineExceeded):
		err = &bodyTimeoutError{fmt.Sprintf("request body too slow: it must keep arriving (no pause over %v) at %s/s on average after the first %v (serve --body-read-timeout)",
			b.grace, skill.FormatSize(MinBodyRate), b.grace)}
	}
	return n, err
}

func (b *deadlineBody) Close() error { return b.body.Close() }

// readBody reads r's body, at most max bytes, holding weight times its
// size against the body budget (the reservation is freed by release, which
// is never nil). Once stop returns true of what was read so far, reading
// stops there. A body over max is a LimitError when max is the server's
// limit and a busyError when it is a smaller one (tooBig).
func (s *Server) readBody(r *http.Request, weight, max int64, tooBig error, stop func([]byte) bool) (body []byte, release func(), err error) {
	var held int64
	release = func() { s.bodies.release(held) }
	grow := func(size int64) error {
		if need := weight*size - held; need > 0 {
			if !s.bodies.reserve(need, weight*size) {
				return &busyError{fmt.Sprintf("server busy: request bodies being read fill the body budget (%s, serve --max-body-memory); retry later", skill.FormatSize(s.bodies.max))}
			}
			held += need
		}
		return nil
	}
	if r.ContentLength > max {
		return nil, release, tooBig
	}
	size := r.ContentLength // -1: unknown, reserved as it arrives
	if size < 0 {
		size = min(max, 32<<10)
	}
	if err := grow(size); err != nil {
		return nil, release, err
	}
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			if r.ContentLength >= 0 && int64(len(buf)) == r.ContentLength {
				// All the declared bytes are in; the next read sees EOF
				// (a longer body is net/http's error, not ours).
				var one [1]byte
				n, err := r.Body.Read(one[:])
				if n > 0 || err != io.EOF {
					return nil, release, bodyError(err)
				}
				return buf, release, nil
			}
			next := min(int64(2*cap(buf)), max+1)
			if next <= int64(cap(buf)) {
				next = int64(cap(buf)) + 1
			}
			if err := grow(next); err != nil {
				return nil, release, err
			}
			nb := make([]byte, len(buf), next)
			copy(nb, buf)
			buf = nb
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > max {
			return nil, release, tooBig
		}
		if stop != nil && stop(buf) {
			return buf, release, nil
		}
		if err == io.EOF {
			return buf, release, nil
		}
		if err != nil {
			return nil, release, bodyError(err)
		}
	}
}

// firstByte returns the first byte of b that is not JSON white space, or 0.
func firstByte(b []byte) byte {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return c
	}
	return 0
}

// batchStop returns a readBody stop func that stops at the first byte of a
// JSON-RPC batch, looking at each byte once.
func batchStop() func([]byte) bool {
	seen, decided := 0, false
	return func(b []byte) bool {
		if decided {
			return false
		}
		if c := firstByte(b[seen:]); c != 0 {
			decided = true
			return c == '['
		}
		seen = len(b)
		return false
	}
}

// isBatch reports whether what was read of a body is a JSON-RPC batch.
func isBatch(b []byte) bool { return firstByte(b) == '[' }

// refuseBatch answers a JSON-RPC batch with error -32600 (Invalid
// Request): each message of a batch would run under the one call slot its
// request took, so batches are refused for every protocol version (MCP
// dropped them in 2025-06-18).
func refuseBatch(w http.ResponseWriter) {
	w.Header().Set("Connection", "close") // the rest of the body is unread
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusBadRequest)
	io.WriteString(w, `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid Request: JSON-RPC batches are not supported; send one message per request"}}`+"\n")
}

// defaultHosts are the names a loopback server answers to, besides its own
// address and Config.AllowHosts.
var defaultHosts = []string{"localhost", "127.0.0.1", "::1"}

// checkHost refuses DNS rebinding: on a connection to a loopback address,
// the Host header, and the Origin header when there is one, must name
// localhost, 127.0.0.1, [::1], the address the connection came in on or a
// name of Config.AllowHosts (any port). A web page that rebinds its own
// name to 127.0.0.1 sends that name, and is refused with 403 before any
// endpoint runs. Connections to other addresses need the bearer token
// (Serve refuses them without one) and are not checked.
func (s *Server) checkHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		if !ok || !IsLoopback(local) {
			next.ServeHTTP(w, r)
			return
		}
		if name, ok := s.hostAllowed(r.Host, local); !ok {
			writeError(w, &errdefs.DeniedError{
				Permission: fmt.Sprintf("Host %q", r.Host),
				Reason:     "a loopback server answers only requests addressed to localhost, 127.0.0.1, [::1], its own address or an allowed name (DNS rebinding protection)",
				Grant:      "--allow-host " + orName(name),
			})
			return
		}
		if o := r.Header.Get("Origin"); o != "" {
			u, err := url.Parse(o)
			name := ""
			if err == nil && u.Host != "" {
				name = u.Host
			}
			if n, ok := s.hostAllowed(name, local); !ok {
				writeError(w, &errdefs.DeniedError{
					Permission: fmt.Sprintf("Origin %q", o),
					Reason:     "a loopback server answers only pages from localhost, 127.0.0.1, [::1], its own address or an allowed name (DNS rebinding protection)",
					Grant:      "--allow-host " + orName(n),
				})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func orName(n string) string {
	if n == "" {
		return "NAME"
	}
	return n
}

// hostAllowed reports whether hostPort (a Host header or an Origin's host)
// names this loopback server, and returns its host name.
func (s *Server) hostAllowed(hostPort string, local net.Addr) (string, bool) {
	name := hostPort
	if h, _, err := net.SplitHostPort(hostPort); err == nil {
		name = h
	}
	// A trailing dot names the same host (and canonHost drops it from the
	// allowed names).
	name = strings.TrimSuffix(strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(name, "["), "]")), ".")
	if name == "" {
		return "", false
	}
	if ip, err := netip.ParseAddr(name); err == nil {
		if tcp, ok := local.(*net.TCPAddr); ok {
			if own, ok := netip.AddrFromSlice(tcp.IP); ok && own.Unmap() == ip.Unmap() {
				return name, true
			}
		}
		name = ip.Unmap().String()
	}
	for _, h := range defaultHosts {
		if name == h {
			return name, true
		}
	}
	for _, h := range s.cfg.AllowHosts {
		if name == h {
			return name, true
		}
	}
	return name, false
}

// ValidHostName checks a name for Config.AllowHosts: a host name or an IP
// address (an IPv6 address bare or in brackets), without scheme, port or
// pattern, in the syntax of internal/hostport.
func ValidHostName(name string) error {
	if _, err := hostport.ParseHost(name); err != nil {
		return errdefs.New(errdefs.Invalid, "allowed host %q: want a host name or IP address, without scheme or port (%v)", name, err)
	}
	return nil
}

// canonHost is name as hostAllowed compares it: lower-case, punycode, no
// trailing dot, an address unbracketed, canonical and unmapped.
func canonHost(name string) string {
	n, err := hostport.ParseHost(name)
	if err != nil {
		return strings.ToLower(name) // never matches a valid Host; Validate refuses it first
	}
	if ip, err := netip.ParseAddr(n); err == nil {
		return ip.Unmap().String()
	}
	return n
}
