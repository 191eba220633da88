package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/jsonscan"
	"github.com/skillbox-dev/skillbox/internal/schema"
	"github.com/skillbox-dev/skillbox/skill"
)

// Handler returns the HTTP handler: MCP (streamable HTTP) at /mcp and the
// JSON API under /v1/, behind the token check, body limit, concurrency
// limit, cross-origin protection and request log.
func (s *Server) Handler() http.Handler {
	m := s.newMCP(false)
	streamable := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return m }, &mcp.StreamableHTTPOptions{
		Logger:              s.log,
		MaxRequestBodyBytes: s.cfg.MaxBodyBytes,
		SessionTimeout:      s.cfg.SessionIdleTimeout,
		// checkHost guards every endpoint, /mcp included, and honours
		// AllowHosts, which the SDK's own check would not.
		DisableLocalhostProtection: true,
	})
	mux := http.NewServeMux()
	mux.Handle("/mcp", s.limitMCP(m, streamable))
	mux.HandleFunc("GET /v1/health", s.health)
	mux.HandleFunc("GET /v1/skills", s.listSkills)
	mux.HandleFunc("GET /v1/skills/{category}/{name}", s.getSkill)
	mux.HandleFunc("GET /v1/skills/{category}/{name}/schema", s.getSchema)
	mux.HandleFunc("POST /v1/skills/{category}/{name}/call", s.callSkill)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, errdefs.New(errdefs.NotFound, "no endpoint %s %s (see /v1/skills and /mcp)", r.Method, r.URL.Path))
	})
	protect := http.NewCrossOriginProtection()
	protect.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, errdefs.New(errdefs.Denied, "cross-origin browser requests are refused"))
	}))
	return s.logRequests(s.guardBody(s.checkHost(protect.Handler(s.authenticate(mux)))))
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "version": s.cfg.Version})
}

// skillSummary is one skill in GET /v1/skills, as in `skillbox list --json`.
type skillSummary struct {
	ID          string   `json:"id"`
	Version     string   `json:"version"`
	Tier        string   `json:"tier"`
	Description string   `json:"description"`
	Tool        string   `json:"tool"`
	Digest      string   `json:"digest"`
	Warnings    []string `json:"warnings,omitempty"`
}

func summarize(e *entry) skillSummary {
	m := e.skill.Bundle.Manifest
	desc := m.ShortDescription
	if desc == "" {
		desc = firstLine(m.Description)
	}
	return skillSummary{ID: e.skill.ID, Version: m.Version, Tier: string(e.skill.Tier), Description: desc,
		Tool: e.name, Digest: e.skill.Digest, Warnings: e.skill.Warnings}
}

func (s *Server) listSkills(w http.ResponseWriter, r *http.Request) {
	out := struct {
		Skills []skillSummary `json:"skills"`
	}{Skills: []skillSummary{}}
	for _, e := range s.skills {
		out.Skills = append(out.Skills, summarize(e))
	}
	writeJSON(w, http.StatusOK, out)
}

// skillDetail is GET /v1/skills/{id}: what `skillbox inspect --json` shows
// that a client needs, and the manifest.
type skillDetail struct {
	skillSummary
	Manifest     json.RawMessage `json:"manifest"`
	Instructions string          `json:"instructions"`
	Card         json.RawMessage `json:"card,omitempty"`
}

func (s *Server) entryOf(w http.ResponseWriter, r *http.Request) *entry {
	e, err := s.lookup(r.PathValue("category") + "/" + r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return nil
	}
	return e
}

func (s *Server) getSkill(w http.ResponseWriter, r *http.Request) {
	e := s.entryOf(w, r)
	if e == nil {
		return
	}
	b := e.skill.Bundle
	writeJSON(w, http.StatusOK, skillDetail{skillSummary: summarize(e), Manifest: b.Manifest.JSON(), Instructions: b.Instructions, Card: b.Card})
}

func (s *Server) getSchema(w http.ResponseWriter, r *http.Request) {
	e := s.entryOf(w, r)
	if e == nil {
		return
	}
	format := r.URL.Query().Get("format")
	if format == "" {
		format = schema.FormatMCP
	}
	out, err := schema.Export(e.tool, format)
	if err != nil {
		writeError(w, err)
		return
	}
	if text, ok := out.(string); ok {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, text)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) callSkill(w http.ResponseWriter, r *http.Request) {
	e := s.entryOf(w, r)
	if e == nil {
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, _ := mime.ParseMediaType(ct); mt != "application/json" {
			writeError(w, errdefs.New(errdefs.Invalid, "Content-Type %q: want application/json", ct))
			return
		}
	}
	// With every slot taken the body is not read (429). Otherwise the body
	// is read first, under the body budget and the read deadlines, and
	// the slot taken once it is in: a client that sends its body slowly
	// holds some of the body budget for a while, never a call slot.
	// A shutdown waits for the body as for the call.
	if !s.calls.free() {
		s.busy(w)
		return
	}
	reading := s.calls.hold()
	defer reading()
	body, release, err := s.readBody(r, 1, s.cfg.MaxBodyBytes, s.tooBig(), nil)
	release = sync.OnceFunc(release)
	defer release()
	if err != nil {
		writeError(w, err)
		return
	}
	if !s.calls.tryAcquire() {
		s.busy(w)
		return
	}
	slot := sync.OnceFunc(s.calls.release)
	defer slot()
	reading()
	res, err := s.call(r.Context(), e, body, "http")
	// The call is over: its slot is free again before the answer is
	// written, so a client slow to take its answer holds its connection
	// (for a bounded time, see answerDeadline), never a call slot. A
	// shutdown still waits for the answer, as for a body.
	writing := s.calls.hold()
	defer writing()
	slot()
	release()
	size := 0
	if err == nil {
		size = len(res.Value) + len(res.Stdout) + len(res.Stderr)
	}
	done := s.answerDeadline(w, size)
	if err != nil {
		writeError(w, err)
	} else {
		writeOK(w, okEnvelope(res))
	}
	done()
}

// answerDeadline bounds the time the answer to a call may take to leave:
// it must be taken at the pace a request body must keep, MinBodyRate
// after a BodyReadTimeout grace, so a client that stops reading a large
// answer loses its connection rather than keeping a goroutine and the
// answer's memory forever. The returned func pushes out what is still
// buffered and lifts the deadline, which would otherwise outlive the
// request on a kept-alive connection.
func (s *Server) answerDeadline(w http.ResponseWriter, size int) (done func()) {
	rc := http.NewResponseController(w)
	d := s.answerTime(size)
	// ErrNotSupported only off a real connection (handler tests).
	if rc.SetWriteDeadline(time.Now().Add(d)) != nil {
		return func() {}
	}
	return func() {
		if err := rc.Flush(); err != nil {
			s.log.Info("answer not taken in time: connection closed", "bytes", size, "deadline", d.String(), "err", err)
			return
		}
		rc.SetWriteDeadline(time.Time{})
	}
}

// answerTime is the time an answer of size bytes may take to leave.
func (s *Server) answerTime(size int) time.Duration {
	return s.cfg.BodyReadTimeout + time.Duration(float64(size)/MinBodyRate*float64(time.Second))
}

// bigResult is the size of result above which writeOK splices it into
// the envelope.
const bigResult = 64 << 10

// writeOK writes a success envelope. A large result is checked and
// compacted into the envelope in one jsontext pass (after utf8.Valid)
// (jsonscan.AppendCompact), escaped as json.Marshal escapes a
// json.RawMessage, rather than scanned and copied by encoding/json: the
// bytes written are the same (issue 17 target 2).
func writeOK(w http.ResponseWriter, env *Envelope) {
	const head = `{"ok":true`
	result := env.Result
	if len(result) <= bigResult {
		writeJSON(w, http.StatusOK, env)
		return
	}
	rest := *env
	rest.Result = nil
	b, err := json.Marshal(&rest)
	if err != nil || !bytes.HasPrefix(b, []byte(head)) {
		writeJSON(w, http.StatusOK, env)
		return
	}
	out := make([]byte, 0, len(b)+len(result)+len(result)/8+16)
	out = append(out, head+`,"result":`...)
	out, ok := jsonscan.AppendCompact(out, result)
	if !ok { // not valid JSON: encoding/json says so, as before
		writeJSON(w, http.StatusOK, env)
		return
	}
	out = append(append(out, b[len(head):]...), '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	w.Write(out)
}

// bodyError classifies a failure to read a request body.
func bodyError(err error) error {
	var tooBig *http.MaxBytesError
	var slow *bodyTimeoutError
	switch {
	case errors.As(err, &tooBig):
		return &errdefs.LimitError{Resource: "request body", Limit: skill.FormatSize(tooBig.Limit)}
	case errors.As(err, &slow):
		return slow
	}
	return errdefs.Wrap(errdefs.Invalid, err, "read request body")
}

// tooBig is the error for a body over MaxBodyBytes.
func (s *Server) tooBig() error {
	return &errdefs.LimitError{Resource: "request body", Limit: skill.FormatSize(s.cfg.MaxBodyBytes)}
}

// busy answers 429 without reading the request body: every call slot is
// taken.
func (s *Server) busy(w http.ResponseWriter) { writeError(w, errSlotsBusy) }

// StatusClientClosedRequest (499, nginx's) answers a call cancelled by its
// client: nobody may be left to read it, but logs and proxies see why.
const StatusClientClosedRequest = 499

// StatusOf maps an error kind to the HTTP status of a failed API request.
func StatusOf(k errdefs.Kind) int {
	switch k {
	case errdefs.Invalid:
		return http.StatusBadRequest
	case errdefs.NotFound:
		return http.StatusNotFound
	case errdefs.Denied:
		return http.StatusForbidden
	case errdefs.Skill, errdefs.Limit:
		return http.StatusUnprocessableEntity
	case errdefs.Timeout:
		return http.StatusGatewayTimeout
	case errdefs.Unavailable:
		return http.StatusServiceUnavailable
	case errdefs.Unsupported:
		return http.StatusNotImplemented
	case errdefs.Canceled:
		return StatusClientClosedRequest
	default:
		return http.StatusInternalServerError
	}
}

func writeError(w http.ResponseWriter, err error) {
	env := errorEnvelope(err)
	status := StatusOf(errdefs.Kind(env.Error.Kind))
	var (
		le   *errdefs.LimitError
		busy *busyError
		slow *bodyTimeoutError
	)
	switch {
	case errors.As(err, &le) && le.Resource == "request body":
		status = http.StatusRequestEntityTooLarge
		w.Header().Set("Connection", "close")
	case errors.As(err, &busy):
		// Answered before (or instead of) reading the body: closing the
		// connection spares draining it.
		status = http.StatusTooManyRequests
		w.Header().Set("Retry-After", "1")
		w.Header().Set("Connection", "close")
	case errors.As(err, &slow):
		status = http.StatusRequestTimeout
		w.Header().Set("Connection", "close")
	}
	writeJSON(w, status, env)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(errorEnvelope(errdefs.Wrap(errdefs.Internal, err, "encode response")))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
