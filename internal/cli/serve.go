package cli

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/skillbox-dev/skillbox"
	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/server"
	"github.com/skillbox-dev/skillbox/skill"
)

func cmdServe(ctx context.Context, c *cmdContext, args []string) error {
	fs := newFlags(c, "serve", "--stdio | --http ADDR [flags]")
	var (
		g                               grantFlags
		stdio                           bool
		addr, token, logLevel, logFmt   string
		maxBody                         string
		lf                              lockFlags
		warm                            listFlag
		maxConcurrent                   int
		shutdownTimeout, progressPeriod time.Duration
		maxBodyMemory                   string
		headerTimeout, bodyTimeout      time.Duration
		sessionIdle                     time.Duration
		maxConns, maxSessions           int
		allowHosts                      listFlag
	)
	g.register(c, fs, "skills")
	lf.register(fs, "serve only the skills in the lockfile, and refuse a call unless the skill, its digest and its grants match it (read once, at start)")
	fs.Var(&warm, "warm", "let calls of the skill `ID` run warm: imported once in a process that serves several of its calls, faster, but "+warmMeaning+" (repeatable; never a default)")
	fs.BoolVar(&stdio, "stdio", false, "serve MCP on standard input and output")
	fs.StringVar(&addr, "http", "", "serve MCP at /mcp and the HTTP API at /v1/ on `ADDR` (e.g. 127.0.0.1:8080)")
	fs.StringVar(&token, "token", "", "bearer `TOKEN` HTTP clients must send (default $SKILLBOX_TOKEN); required beyond loopback")
	fs.StringVar(&maxBody, "max-body", "4MiB", "largest HTTP request body")
	fs.IntVar(&maxConcurrent, "max-concurrent", server.DefaultMaxConcurrent, "calls in flight over HTTP before answering 429")
	fs.StringVar(&maxBodyMemory, "max-body-memory", "", "`SIZE` of the HTTP request bodies held at once over all requests, beyond which requests are answered 429 (default 64MiB, or twice --max-body when that is more; an MCP message counts twice)")
	fs.DurationVar(&headerTimeout, "read-header-timeout", server.DefaultReadHeaderTimeout, "time a client has to send a request's headers before its connection is closed")
	fs.DurationVar(&bodyTimeout, "body-read-timeout", server.DefaultBodyReadTimeout, "longest pause while a request body arrives, and the grace after which it must average 64KiB/s (else 408 and the connection is closed); a call's answer must be taken at the same pace")
	fs.IntVar(&maxConns, "max-conns", server.DefaultMaxConns, "open HTTP connections; more clients wait to be accepted")
	fs.IntVar(&maxSessions, "max-sessions", server.DefaultMaxSessions, "live MCP sessions over HTTP; a new session beyond them is answered 503")
	fs.DurationVar(&sessionIdle, "session-idle-timeout", server.DefaultSessionIdleTimeout, "end an MCP session over HTTP that has had no request for this long")
	fs.Var(&allowHosts, "allow-host", "also answer requests whose Host or Origin names `NAME` on a loopback listener (repeatable; localhost, 127.0.0.1, [::1] and the listen address always are)")
	fs.DurationVar(&shutdownTimeout, "shutdown-timeout", server.DefaultShutdownTimeout, "on SIGINT/SIGTERM, how long calls in flight may finish before they are cancelled")
	fs.DurationVar(&progressPeriod, "progress-interval", server.DefaultProgressInterval, "how often long MCP calls report progress")
	fs.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&logFmt, "log-format", "text", "text or json (logs go to standard error)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 0, "no arguments"); err != nil {
		return err
	}
	if stdio == (addr != "") {
		return errdefs.New(errdefs.Invalid, "give exactly one of --stdio or --http ADDR")
	}
	if addr != "" {
		// A bad address is a usage error found before anything starts,
		// not a listener that fails (unavailable) after the skills load.
		if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
			return errdefs.New(errdefs.Invalid, "--http %q: want HOST:PORT, e.g. 127.0.0.1:8765 (port 0 picks a free one)", addr)
		}
	}
	opts, provider, err := g.options(c)
	if err != nil {
		return err
	}
	for _, id := range warm {
		if !skill.ValidID(id) {
			return errdefs.New(errdefs.Invalid, "--warm %q: want a skill id (category/name)", id)
		}
	}
	opts.Warm = warm
	// As for run --locked: every call, through any transport, is checked
	// against the lockfile, which is loaded once here; a missing or broken
	// one stops the server from starting.
	if opts.Lock, err = lf.load(); err != nil {
		return err
	}
	if token == "" {
		token = c.env.Getenv("SKILLBOX_TOKEN")
	}
	body, err := skill.ParseSize(maxBody)
	if err != nil || body <= 0 {
		return errdefs.New(errdefs.Invalid, "--max-body %q: want a positive size such as 4MiB", maxBody)
	}
	if maxConcurrent <= 0 || shutdownTimeout <= 0 || progressPeriod <= 0 {
		return errdefs.New(errdefs.Invalid, "--max-concurrent, --shutdown-timeout and --progress-interval must be positive")
	}
	var bodyMemory int64
	if maxBodyMemory != "" {
		if bodyMemory, err = skill.ParseSize(maxBodyMemory); err != nil || bodyMemory < 2*body {
			return errdefs.New(errdefs.Invalid, "--max-body-memory %q: want a size of at least twice --max-body (an MCP message counts twice), such as 64MiB", maxBodyMemory)
		}
	}
	if headerTimeout <= 0 || bodyTimeout <= 0 || maxConns <= 0 || maxSessions <= 0 || sessionIdle <= 0 {
		return errdefs.New(errdefs.Invalid, "--read-header-timeout, --body-read-timeout, --max-conns, --max-sessions and --session-idle-timeout must be positive")
	}
	for _, h := range allowHosts {
		if server.ValidHostName(h) != nil {
			return errdefs.New(errdefs.Invalid, "--allow-host %q: want a host name or IP address, without scheme or port", h)
		}
	}
	logger, err := newLogger(c.stderr, logLevel, logFmt)
	if err != nil {
		return err
	}

	// A pull or a build on first use says what it does on stderr, as in run.
	rt, closeRT, err := c.runtime(true, skillbox.WithSecrets(provider), c.imageProgress())
	if err != nil {
		return err
	}
	defer closeRT()
	srv, err := server.New(rt, server.Config{
		Call: opts, Token: token, MaxBodyBytes: body, MaxConcurrent: maxConcurrent,
		MaxBodyMemory: bodyMemory, ReadHeaderTimeout: headerTimeout, BodyReadTimeout: bodyTimeout,
		MaxConns: maxConns, MaxSessions: maxSessions, SessionIdleTimeout: sessionIdle, AllowHosts: allowHosts,
		ProgressInterval: progressPeriod, ShutdownTimeout: shutdownTimeout, Logger: logger, Version: Version,
	})
	if err != nil {
		return err
	}
	for _, w := range rt.RootWarnings() {
		logger.Warn("skill roots: "+w, "see", "skillbox paths")
	}
	if opts.Lock != nil {
		logger.Info("locked: calls of skills that drift from the lockfile are refused", "lockfile", lf.path, "skills", len(opts.Lock.IDs()))
	}
	if stdio {
		// Standard output is the MCP channel: nothing else writes to it.
		return srv.ServeStdio(ctx, io.NopCloser(c.stdin), nopWriteCloser{c.stdout})
	}
	ln, err := srv.Listen(addr)
	if err != nil {
		return err
	}
	return srv.Serve(ctx, ln)
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// newLogger returns a slog logger writing to w.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, errdefs.New(errdefs.Invalid, "--log-level %q: want debug, info, warn or error", level)
	}
	ho := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, ho)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, ho)), nil
	default:
		return nil, errdefs.New(errdefs.Invalid, "--log-format %q: want text or json", format)
	}
}
