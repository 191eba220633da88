package server

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
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

// limitBody bounds every request body.
func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > s.cfg.MaxBodyBytes {
			writeError(w, &errdefs.LimitError{Resource: "request body", Limit: byteSize(s.cfg.MaxBodyBytes)})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		next.ServeHTTP(w, r)
	})
}

// limitMCP takes a call slot for an MCP POST that carries a tools/call, or
// answers 429. Other messages (initialize, lists, cancellations) always
// pass, so a full server can still be told to cancel.
func (s *Server) limitMCP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			writeError(w, bodyError(err))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if !callsTool(body) {
			next.ServeHTTP(w, r)
			return
		}
		if !s.calls.tryAcquire() {
			s.busy(w)
			return
		}
		defer s.calls.release()
		next.ServeHTTP(w, r)
	})
}

// callsTool reports whether a JSON-RPC message or batch holds a tools/call.
func callsTool(body []byte) bool {
	if !bytes.Contains(body, []byte("tools/call")) {
		return false
	}
	type msg struct {
		Method string `json:"method"`
	}
	var batch []msg
	if json.Unmarshal(body, &batch) != nil {
		var m msg
		if json.Unmarshal(body, &m) != nil {
			return false
		}
		batch = []msg{m}
	}
	for _, m := range batch {
		if m.Method == "tools/call" {
			return true
		}
	}
	return false
}

// logRequests logs every request once it is answered.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		level := s.log.Debug
		if rec.status >= 500 || rec.status == http.StatusTooManyRequests || rec.status == http.StatusUnauthorized {
			level = s.log.Warn
		}
		level("http", "method", r.Method, "path", r.URL.Path, "status", rec.status,
			"ms", time.Since(start).Milliseconds(), "remote", r.RemoteAddr)
	})
}

// statusRecorder remembers the status written through it; Unwrap lets
// http.ResponseController reach Flush for MCP's event streams.
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

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	default:
		return fmt.Sprintf("%d bytes", n)
	}
}
