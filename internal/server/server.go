package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/skillbox-dev/skillbox"
	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/schema"
	"github.com/skillbox-dev/skillbox/skill"
)

// Defaults for the zero fields of [Config].
const (
	DefaultMaxBodyBytes     = 4 << 20
	DefaultMaxConcurrent    = 64
	DefaultProgressInterval = time.Second
	DefaultShutdownTimeout  = 10 * time.Second
	// DefaultReadHeaderTimeout bounds the reading of a request's headers.
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultBodyReadTimeout is the longest pause in a request body, and
	// the grace before MinBodyRate applies.
	DefaultBodyReadTimeout = 10 * time.Second
	// DefaultMaxConns bounds the open HTTP connections.
	DefaultMaxConns = 1024
	// DefaultMaxSessions bounds the live MCP sessions over HTTP.
	DefaultMaxSessions = 1024
	// DefaultSessionIdleTimeout ends an MCP session over HTTP that has had
	// no request for this long.
	DefaultSessionIdleTimeout = 30 * time.Minute
	// DefaultMaxBodyMemory bounds the bytes of request bodies held at once
	// (raised to twice MaxBodyBytes when that is more).
	DefaultMaxBodyMemory = 64 << 20
)

// Config configures a Server. The zero value serves with the defaults and
// no token (loopback only).
type Config struct {
	// Call holds the operator's grants, applied to every call. Mode is
	// ignored: every call is single-use.
	Call skillbox.CallOptions
	// Token is the bearer token HTTP clients must send. Empty means none,
	// which Serve allows only on loopback.
	Token string
	// MaxBodyBytes bounds an HTTP request body (DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// MaxBodyMemory bounds the bytes of HTTP request bodies the server
	// holds at once, over all requests (an MCP message counts twice: the
	// SDK keeps its own copy). A body that does not fit is answered 429
	// (DefaultMaxBodyMemory, or 2*MaxBodyBytes when that is more; at least
	// 2*MaxBodyBytes when set).
	MaxBodyMemory int64
	// ReadHeaderTimeout bounds the reading of a request's headers; the
	// connection is closed when it passes (DefaultReadHeaderTimeout).
	ReadHeaderTimeout time.Duration
	// BodyReadTimeout is the longest pause while a request body arrives,
	// and the grace after which it must average MinBodyRate; past either
	// the request is answered 408 and its connection closed
	// (DefaultBodyReadTimeout). A call's answer must leave at the same
	// pace, else its connection is closed.
	BodyReadTimeout time.Duration
	// MaxConns bounds the open HTTP connections Serve accepts; further
	// clients wait in the listen backlog (DefaultMaxConns).
	MaxConns int
	// MaxSessions bounds the live MCP sessions over HTTP (each holds a
	// little memory until its client ends it or it has been idle for
	// SessionIdleTimeout); an initialize beyond it is answered 503
	// (DefaultMaxSessions).
	MaxSessions int
	// SessionIdleTimeout ends an MCP session over HTTP that has had no
	// request for this long, so that clients that vanish without ending
	// theirs do not hold room under MaxSessions
	// (DefaultSessionIdleTimeout; the SDK's StreamableHTTPOptions.SessionTimeout).
	SessionIdleTimeout time.Duration
	// AllowHosts are names, besides localhost, 127.0.0.1, [::1] and the
	// listener's own address, that requests to a loopback listener may
	// carry in Host and Origin (see ValidHostName).
	AllowHosts []string
	// MaxConcurrent bounds the calls in flight over HTTP; more are answered
	// with 429 (DefaultMaxConcurrent). Over stdio calls wait for a slot.
	MaxConcurrent int
	// ProgressInterval is how often a call whose client asked for progress
	// reports it (DefaultProgressInterval).
	ProgressInterval time.Duration
	// ShutdownTimeout is how long Serve lets calls in flight finish after
	// its context ends before cancelling them (DefaultShutdownTimeout).
	ShutdownTimeout time.Duration
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// Version is reported to clients ("dev" when empty).
	Version string
}

// Validate checks c.
func (c *Config) Validate() error {
	var errs []error
	if c.MaxBodyBytes < 0 {
		errs = append(errs, errdefs.New(errdefs.Invalid, "max body bytes %d: want >= 0", c.MaxBodyBytes))
	}
	if c.MaxConcurrent < 0 {
		errs = append(errs, errdefs.New(errdefs.Invalid, "max concurrent calls %d: want >= 0", c.MaxConcurrent))
	}
	if c.ProgressInterval < 0 || c.ShutdownTimeout < 0 || c.ReadHeaderTimeout < 0 || c.BodyReadTimeout < 0 {
		errs = append(errs, errdefs.New(errdefs.Invalid, "progress interval, shutdown timeout and read timeouts must not be negative"))
	}
	if c.MaxConns < 0 {
		errs = append(errs, errdefs.New(errdefs.Invalid, "max connections %d: want >= 0", c.MaxConns))
	}
	if c.MaxSessions < 0 || c.SessionIdleTimeout < 0 {
		errs = append(errs, errdefs.New(errdefs.Invalid, "max sessions %d, session idle timeout %v: want >= 0", c.MaxSessions, c.SessionIdleTimeout))
	}
	body := c.MaxBodyBytes
	if body == 0 {
		body = DefaultMaxBodyBytes
	}
	if c.MaxBodyMemory < 0 || c.MaxBodyMemory > 0 && c.MaxBodyMemory < 2*body {
		errs = append(errs, errdefs.New(errdefs.Invalid, "max body memory %s: want at least twice the largest body (%s), since an MCP message counts twice", skill.FormatSize(c.MaxBodyMemory), skill.FormatSize(body)))
	}
	for _, h := range c.AllowHosts {
		if err := ValidHostName(h); err != nil {
			errs = append(errs, err)
		}
	}
	if strings.ContainsAny(c.Token, " \t\r\n") {
		errs = append(errs, errdefs.New(errdefs.Invalid, "token must not contain white space"))
	}
	return errors.Join(errs...)
}

func (c *Config) setDefaults() {
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxConcurrent == 0 {
		c.MaxConcurrent = DefaultMaxConcurrent
	}
	if c.MaxBodyMemory == 0 {
		c.MaxBodyMemory = max(DefaultMaxBodyMemory, 2*c.MaxBodyBytes)
	}
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if c.BodyReadTimeout == 0 {
		c.BodyReadTimeout = DefaultBodyReadTimeout
	}
	if c.MaxConns == 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.MaxSessions == 0 {
		c.MaxSessions = DefaultMaxSessions
	}
	if c.SessionIdleTimeout == 0 {
		c.SessionIdleTimeout = DefaultSessionIdleTimeout
	}
	hosts := make([]string, len(c.AllowHosts))
	for i, h := range c.AllowHosts {
		hosts[i] = canonHost(h)
	}
	c.AllowHosts = hosts
	if c.ProgressInterval == 0 {
		c.ProgressInterval = DefaultProgressInterval
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Version == "" {
		c.Version = "dev"
	}
}

// Server serves the skills of one Runtime. It is safe for concurrent use;
// the Runtime stays the caller's to close.
type Server struct {
	rt     *skillbox.Runtime
	cfg    Config
	log    *slog.Logger
	skills []*entry          // sorted by id
	byID   map[string]*entry // by skill id
	byTool map[string]*entry // by MCP tool name

	// calls counts the calls in flight and bounds them.
	calls *limiter
	// handoffs hold the slots of MCP calls between their POST and their
	// tool handler.
	handoffs handoffs
	// bodies bounds the bytes of request bodies held.
	bodies *budget
	// sessions serialises the start of MCP sessions over HTTP, which are
	// counted against MaxSessions.
	sessions sync.Mutex
	// stop cancels every call in flight when a shutdown deadline passes.
	stopCtx  context.Context
	stopOnce sync.Once
	stop     context.CancelFunc
}

// entry is one skill of the catalogue.
type entry struct {
	skill *skill.Skill
	tool  schema.Tool
	name  string            // MCP tool name
	out   *schema.Validator // outputs schema, when the tool declares one
}

// New builds a Server over rt's skills. Skills that fail to load, and
// skills whose tool name collides with an earlier id's, are left out and
// logged.
func New(rt *skillbox.Runtime, cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	cfg.Call.Mode = ""
	s := &Server{
		rt: rt, cfg: cfg, log: cfg.Logger,
		byID: map[string]*entry{}, byTool: map[string]*entry{},
		calls:  newLimiter(cfg.MaxConcurrent),
		bodies: &budget{max: cfg.MaxBodyMemory},
	}
	s.stopCtx, s.stop = context.WithCancel(context.Background())
	list, errs := rt.List()
	for _, err := range errs {
		s.log.Warn("skill not served", "err", err.Error())
	}
	sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	for _, sk := range list {
		// Under a lockfile only locked skills are offered: the others would
		// be refused on every call.
		if l := cfg.Call.Lock; l != nil {
			if !l.Has(sk.ID) {
				s.log.Info("skill not served: not in the lockfile", "skill", sk.ID)
				continue
			}
		}
		e := &entry{skill: sk, tool: toolOf(sk), name: schema.ToolName(sk.ID)}
		if prev, ok := s.byTool[e.name]; ok {
			s.log.Warn("skill not served: tool name taken", "skill", sk.ID, "tool", e.name, "by", prev.skill.ID)
			continue
		}
		if o, ok := sk.Bundle.Manifest.Outputs.(map[string]any); ok && o["type"] == "object" {
			v, err := schema.Compile(o)
			if err != nil {
				s.log.Warn("skill not served: bad outputs schema", "skill", sk.ID, "err", err.Error())
				continue
			}
			e.out = v
		}
		for _, w := range sk.Warnings {
			s.log.Warn("skill warning", "skill", sk.ID, "warning", w)
		}
		s.skills = append(s.skills, e)
		s.byID[sk.ID] = e
		s.byTool[e.name] = e
	}
	for _, id := range cfg.Call.Warm {
		if _, ok := s.byID[id]; !ok {
			s.log.Warn("--warm names a skill that is not served", "skill", id)
			continue
		}
		s.log.Warn("skill runs warm: calls of this skill may share state that its import created", "skill", id)
	}
	s.log.Info("skills loaded", "count", len(s.skills))
	return s, nil
}

// toolOf describes sk for schema export, as `skillbox schema` does.
func toolOf(sk *skill.Skill) schema.Tool {
	m := sk.Bundle.Manifest
	return schema.Tool{
		ID:           sk.ID,
		Name:         m.Name,
		Description:  m.Description, // byte for byte, as `skillbox schema` and Skillware give it
		Parameters:   m.Parameters,
		Outputs:      m.Outputs,
		Instructions: sk.Bundle.Instructions,
	}
}

// Skills returns the ids of the served skills, sorted.
func (s *Server) Skills() []string {
	ids := make([]string, len(s.skills))
	for i, e := range s.skills {
		ids[i] = e.skill.ID
	}
	return ids
}

// lookup returns the catalogue entry for id, or a NotFound error.
func (s *Server) lookup(id string) (*entry, error) {
	if e, ok := s.byID[id]; ok {
		return e, nil
	}
	if s.cfg.Call.Lock != nil {
		return nil, errdefs.New(errdefs.NotFound, "skill %q is not served here (this server serves only the skills in its lockfile)", id)
	}
	return nil, errdefs.New(errdefs.NotFound, "skill %q is not served here", id)
}

// guidance is what an agent should read before using the skill:
// instructions.md, then the manifest's constitution.
func guidance(sk *skill.Skill) string {
	var b strings.Builder
	b.WriteString(strings.TrimSpace(sk.Bundle.Instructions))
	if c := strings.TrimSpace(sk.Bundle.Manifest.Constitution); c != "" {
		if b.Len() > 0 {
			b.WriteString("\n\n")
		}
		fmt.Fprintf(&b, "## Constitution\n\n%s", c)
	}
	b.WriteString("\n")
	return b.String()
}
