package server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"golang.org/x/net/netutil"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/skill"
)

// cancelGrace is how long cancelled calls get to answer before a shutdown
// closes their connections.
const cancelGrace = 2 * time.Second

// Listen opens a TCP listener on addr, refusing any address but loopback
// when the server has no token.
func (s *Server) Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, errdefs.Wrap(errdefs.Unavailable, err, "listen")
	}
	if err := s.checkExposure(ln.Addr()); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// checkExposure refuses a listener beyond loopback without a token.
func (s *Server) checkExposure(a net.Addr) error {
	if s.cfg.Token != "" || IsLoopback(a) {
		return nil
	}
	return &errdefs.DeniedError{
		Permission: "listen on " + a.String(),
		Reason:     "an address beyond loopback needs a bearer token",
		Grant:      "--token TOKEN or SKILLBOX_TOKEN",
	}
}

// IsLoopback reports whether a is a TCP address on a loopback interface
// (an unspecified address such as 0.0.0.0 is not).
func IsLoopback(a net.Addr) bool {
	tcp, ok := a.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

// Serve answers HTTP on ln until ctx ends, then shuts down: it stops
// accepting, lets calls in flight finish for ShutdownTimeout, cancels those
// still running (their sandboxes are killed), gives them a moment to
// answer and closes every connection. It refuses a listener beyond loopback
// without a token.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if err := s.checkExposure(ln.Addr()); err != nil {
		ln.Close()
		return err
	}
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		IdleTimeout:       2 * time.Minute,
	}
	s.log.Info("serving HTTP", "addr", ln.Addr().String(), "mcp", "/mcp", "api", "/v1/", "skills", len(s.skills), "token", s.cfg.Token != "",
		"max_conns", s.cfg.MaxConns, "max_body_memory", skill.FormatSize(s.cfg.MaxBodyMemory))
	// Beyond MaxConns, clients wait in the kernel's listen backlog.
	ln = netutil.LimitListener(ln, s.cfg.MaxConns)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return errdefs.Wrap(errdefs.Unavailable, err, "serve")
	case <-ctx.Done():
	}
	s.log.Info("shutting down", "in_flight", s.calls.inFlight(), "deadline", s.cfg.ShutdownTimeout.String())
	hs.SetKeepAlivesEnabled(false)
	// Shutdown closes the listener at once, then waits for connections to
	// go idle; MCP event streams never do, so calls are what we wait for.
	shut := make(chan struct{})
	go func() {
		defer close(shut)
		sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout+cancelGrace)
		defer cancel()
		hs.Shutdown(sctx)
	}()
	select {
	case <-s.calls.drained():
	case <-time.After(s.cfg.ShutdownTimeout):
		s.log.Warn("shutdown deadline passed: cancelling calls", "in_flight", s.calls.inFlight())
		s.stopOnce.Do(s.stop)
		select {
		case <-s.calls.drained():
		case <-time.After(cancelGrace):
		}
	}
	// Answers are flushed after their handlers return: let them go out.
	select {
	case <-shut:
	case <-time.After(time.Second):
	}
	err := hs.Close()
	if err2 := <-errc; !errors.Is(err2, http.ErrServerClosed) && err == nil {
		err = err2
	}
	s.log.Info("stopped", "in_flight", s.calls.inFlight())
	return err
}
