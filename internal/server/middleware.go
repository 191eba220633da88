package server

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/skill"
)

// authenticate checks the bearer token, when one is configured, on every
// request but GET /v1/health.
func (s *Server) authenticate(next http.Handler) http.Handler {
	if s.cfg.Token == "" {
		return next
	}
	want := sha256.Sum256([]byte(s.cfg.Token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/v1/health" {
			next.ServeHTTP(w, r)
			return
		}
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
		if !ok || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="skillbox"`)
			writeJSON(w, http.StatusUnauthorized, errorEnvelope(errdefs.New(errdefs.Denied, "missing or wrong bearer token (send Authorization: Bearer TOKEN)")))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// limitMCP takes a call slot for an MCP POST that carries a tools/call, or
// answers 429, and hands the slot to the tool handler (handOver). Other
// messages (initialize, lists, cancellations) always pass, so a full
// server can still be told to cancel. The body is read
// before the slot is taken (a slow body holds body budget, not a slot);
// while no slot is free only a message of up to 64KiB is read (a larger
// one is answered 429 unread). A JSON-RPC batch is refused with -32600 as
// soon as its '[' is read.
func (s *Server) limitMCP(m *mcp.Server, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Del(callHeader) // the server's own: never a client's
		if r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		limit, tooBig := s.cfg.MaxBodyBytes, s.tooBig()
		if !s.calls.free() && limit > mcpBusyBody {
			limit, tooBig = mcpBusyBody, &busyError{"server busy: all call slots are in use, and while they are only MCP messages up to " + skill.FormatSize(mcpBusyBody) + " are read; retry later"}
		}
		// A shutdown waits for the body as for a call. The SDK reads its
		// own copy of the body: it counts twice.
		reading := s.calls.hold()
		defer reading()
		body, release, err := s.readBody(r, 2, limit, tooBig, batchStop())
		defer release()
		if err != nil {
			writeError(w, err)
			return
		}
		if isBatch(body) {
			refuseBatch(w)
			return
		}
		if callsTool(body) {
			if !s.calls.tryAcquire() {
				s.busy(w)
				return
			}
			defer s.handOver(r)()
		}
		reading()
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		if r.Header.Get("Mcp-Session-Id") == "" && mayBe(body, "initialize") {
			// A new session: counted and started one at a time, so that
			// the cap is exact.
			s.sessions.Lock()
			defer s.sessions.Unlock()
			if n := countSessions(m); n >= s.cfg.MaxSessions {
				writeError(w, &unavailableError{fmt.Sprintf("server busy: %d MCP sessions are open, the most it keeps (serve --max-sessions); end unused sessions (HTTP DELETE) or retry later", n)})
				return
			}
		}
		pw := s.pace(w)
		defer pw.done()
		next.ServeHTTP(pw, r)
	})
}

// pacedWriter holds what the SDK writes in answer to an MCP POST (an
// event stream or a JSON body) to the pace answerDeadline sets for a /v1/
// answer: before each write and flush, the connection's write deadline is
// BodyReadTimeout plus the bytes not yet flushed at MinBodyRate. A client
// that stops reading its answer is cut off when that passes, and the call
// slot and the session's stream its POST holds are freed; without it, one
// such client per slot would stop every call.
type pacedWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	s       *Server
	pending int
	off     bool // no deadlines off a real connection (handler tests)
	failed  bool
}

func (s *Server) pace(w http.ResponseWriter) *pacedWriter {
	rc := http.NewResponseController(w)
	return &pacedWriter{ResponseWriter: w, rc: rc, s: s, off: rc.SetWriteDeadline(time.Time{}) != nil}
}

func (p *pacedWriter) arm() {
	if !p.off {
		p.rc.SetWriteDeadline(time.Now().Add(p.s.answerTime(p.pending)))
	}
}

func (p *pacedWriter) Write(b []byte) (int, error) {
	p.pending += len(b)
	p.arm()
	n, err := p.ResponseWriter.Write(b)
	p.failed = p.failed || err != nil
	return n, err
}

func (p *pacedWriter) Flush() { p.FlushError() }

// FlushError flushes within the deadline; http.ResponseController, which
// the SDK flushes through, calls it.
func (p *pacedWriter) FlushError() error {
	p.arm()
	err := p.rc.Flush()
	p.pending = 0
	p.failed = p.failed || err != nil
	return err
}

func (p *pacedWriter) Unwrap() http.ResponseWriter { return p.ResponseWriter }

// done lifts the deadline, which would otherwise outlive the request on a
// kept-alive connection, unless a write failed: net/http then closes the
// connection.
func (p *pacedWriter) done() {
	if p.off {
		return
	}
	if p.failed {
		p.s.log.Info("MCP answer not taken in time: connection closed")
		return
	}
	if p.FlushError() == nil {
		p.rc.SetWriteDeadline(time.Time{})
	}
}

// countSessions is the number of m's live sessions.
func countSessions(m *mcp.Server) int {
	n := 0
	for range m.Sessions() {
		n++
	}
	return n
}

// unavailableError is a refusal for want of capacity the client cannot
// free by waiting for its own calls: 503.
type unavailableError struct{ msg string }

func (e *unavailableError) Error() string { return e.msg }

// ErrorKind reports Unavailable.
func (e *unavailableError) ErrorKind() errdefs.Kind { return errdefs.Unavailable }

// callsTool reports whether a JSON-RPC message may be a tools/call.
func callsTool(body []byte) bool { return mayBe(body, "tools/call") }

// mayBe reports whether body may be a JSON-RPC message calling method: it
// is, read as the SDK reads it (member names matched exactly, escapes
// undone: "tools\/call" is tools/call), or its method cannot be read for
// certain (a repeated member name, a method that is not a string, a body
// that is not a JSON object), so that no spelling gets a message past the
// limit that counts it.
func mayBe(body []byte, method string) bool {
	var m struct {
		Method string `json:"method"`
	}
	return jsonv2.Unmarshal(body, &m) != nil || m.Method == method
}

// logRequests logs every request once it is answered.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		level := s.log.Debug
		if rec.status >= 500 || rec.status == http.StatusTooManyRequests || rec.status == http.StatusUnauthorized || rec.status == http.StatusRequestTimeout {
			level = s.log.Warn
		}
		level("http", "method", r.Method, "path", r.URL.Path, "status", rec.status,
			"ms", time.Since(start).Milliseconds(), "remote", r.RemoteAddr)
	})
}

// statusRecorder remembers the status written through it; Unwrap and
// FlushError let http.ResponseController reach the connection (Flush for
// MCP's event streams, write deadlines for a call's answer).
type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// FlushError flushes and says whether the bytes went out (a write
// deadline that passed, a client gone), where Flush cannot.
func (r *statusRecorder) FlushError() error {
	return http.NewResponseController(r.ResponseWriter).Flush()
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
