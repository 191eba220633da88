package server

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/skillbox-dev/skillbox/skill"
)

// A panic while serving an MCP tool call fails that call (kind internal)
// instead of ending the process: the SDK runs handlers in goroutines that
// nothing recovers. A Server with no runtime or stop context panics in
// call, as a bug below the handler would.
func TestToolHandlerPanicFailsTheCall(t *testing.T) {
	s := &Server{log: slog.New(slog.NewTextHandler(io.Discard, nil)), calls: newLimiter(1)}
	e := &entry{skill: &skill.Skill{ID: "test/x"}, name: "test_x"}
	res, err := s.toolHandler(e, true)(context.Background(), &mcp.CallToolRequest{Params: &mcp.CallToolParamsRaw{Name: "test_x"}})
	if err != nil || res == nil || !res.IsError {
		t.Fatalf("result %+v, error %v; want an error result", res, err)
	}
	text := res.Content[0].(*mcp.TextContent).Text
	if !strings.Contains(text, `"kind":"internal"`) || !strings.Contains(text, "internal error serving test/x") {
		t.Errorf("error result %s", text)
	}
}
