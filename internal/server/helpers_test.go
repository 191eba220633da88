package server_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/skillbox-dev/skillbox"
	"github.com/skillbox-dev/skillbox/internal/server"
	"github.com/skillbox-dev/skillbox/sandbox"
	_ "github.com/skillbox-dev/skillbox/sandbox/all"
	"github.com/skillbox-dev/skillbox/skill"
)

// testBackend is the backend the tests run calls on (SKILLBOX_TEST_BACKEND
// overrides process, so the suite can run on an isolating backend).
func testBackend() string {
	if b := os.Getenv("SKILLBOX_TEST_BACKEND"); b != "" {
		return b
	}
	return "process"
}

// newServer returns a Server over the test skills and the bundled examples,
// with cfg's grants completed for the test backend.
func newServer(t *testing.T, cfg server.Config) *server.Server {
	t.Helper()
	ctx := context.Background()
	backend := testBackend()
	if cfg.Call.Backend != "" {
		backend = cfg.Call.Backend
	}
	d, err := sandbox.Choose(ctx, backend, false)
	if err != nil {
		t.Skipf("backend %s: %v", backend, err)
	}
	if c := d.Probe(ctx); !c.Available {
		t.Skipf("backend %s unavailable here: %s", backend, c.Reason)
	}
	bundled, err := skillbox.BundledRoot(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rt, err := skillbox.New(skillbox.WithRoots(
		skill.Root{Path: "testdata/skills", Tier: skill.TierExternal},
		skill.Root{Path: bundled, Tier: skill.TierBundled},
	), skillbox.WithBackend(backend))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	cfg.Call.TrustRemoteCode = true
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	s, err := server.New(rt, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// connectStdio serves s over in-memory pipes, as `serve --stdio` does, and
// returns a connected SDK client session.
func connectStdio(t *testing.T, s *server.Server, opts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cr, sw := io.Pipe()
	sr, cw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- s.ServeStdio(ctx, sr, sw) }()
	c := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, opts)
	cs, err := c.Connect(ctx, &mcp.IOTransport{Reader: cr, Writer: cw}, nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cs.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeStdio: %v", err)
		}
	})
	return cs
}

// connectHTTP serves s on a loopback test server and returns a connected
// SDK client session over streamable HTTP.
func connectHTTP(t *testing.T, s *server.Server, opts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	c := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, opts)
	cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: hs.URL + "/mcp"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

var transports = []struct {
	name    string
	connect func(*testing.T, *server.Server, *mcp.ClientOptions) *mcp.ClientSession
}{
	{"stdio", connectStdio},
	{"http", connectHTTP},
}

// textOf returns the text of a tool result's only content.
func textOf(t *testing.T, r *mcp.CallToolResult) string {
	t.Helper()
	if len(r.Content) != 1 {
		t.Fatalf("content has %d items, want 1: %+v", len(r.Content), r.Content)
	}
	tc, ok := r.Content[0].(*mcp.TextContent)
	if !ok {
		t.Fatalf("content is %T, want text", r.Content[0])
	}
	return tc.Text
}

// errorOf decodes the failure envelope of an isError tool result.
func errorOf(t *testing.T, r *mcp.CallToolResult) server.ErrorBody {
	t.Helper()
	return *failureOf(t, r).Error
}

// failureOf decodes a tool error result's failure envelope.
func failureOf(t *testing.T, r *mcp.CallToolResult) server.Envelope {
	t.Helper()
	if !r.IsError {
		t.Fatalf("result is not an error: %s", textOf(t, r))
	}
	var env server.Envelope
	if err := json.Unmarshal([]byte(textOf(t, r)), &env); err != nil || env.Error == nil || env.OK {
		t.Fatalf("error content %q is not a failure envelope (%v)", textOf(t, r), err)
	}
	return env
}

func pidFile(t *testing.T) string {
	return filepath.Join(t.TempDir(), "pid")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

var _ = strings.Contains
