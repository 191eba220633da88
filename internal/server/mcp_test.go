package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/skillbox-dev/skillbox/internal/server"
)

func TestMCP(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			var progress atomic.Int32
			s := newServer(t, server.Config{ProgressInterval: 100 * time.Millisecond})
			cs := tr.connect(t, s, &mcp.ClientOptions{
				ProgressNotificationHandler: func(ctx context.Context, req *mcp.ProgressNotificationClientRequest) {
					if req.Params.ProgressToken == "tok" {
						progress.Add(1)
					}
				},
			})
			ctx := context.Background()

			t.Run("ListTools", func(t *testing.T) {
				res, err := cs.ListTools(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				tools := map[string]*mcp.Tool{}
				for _, tool := range res.Tools {
					tools[tool.Name] = tool
				}
				for _, name := range []string{"test_echo", "test_raises", "test_sleep", "test_shape", "text_word_stats", "data_csv_summary"} {
					if tools[name] == nil {
						t.Errorf("tool %s missing; have %v", name, s.Skills())
					}
				}
				echo := tools["test_echo"]
				if echo == nil {
					t.FailNow()
				}
				if echo.Description != "Returns its params." || echo.OutputSchema != nil {
					t.Errorf("test_echo = %+v", echo)
				}
				in, _ := json.Marshal(echo.InputSchema)
				if !strings.Contains(string(in), `"msg":{"type":"string"}`) {
					t.Errorf("test_echo inputSchema = %s", in)
				}
				if tools["text_word_stats"].OutputSchema == nil {
					t.Error("text_word_stats has no outputSchema")
				}
			})

			t.Run("Call", func(t *testing.T) {
				res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "test_echo", Arguments: map[string]any{"msg": "hi"}})
				if err != nil {
					t.Fatal(err)
				}
				if res.IsError {
					t.Fatalf("isError: %s", textOf(t, res))
				}
				if got := textOf(t, res); got != `{"params": {"msg": "hi"}}` && got != `{"params":{"msg":"hi"}}` {
					t.Errorf("text = %s", got)
				}
				sc, _ := json.Marshal(res.StructuredContent)
				if string(sc) != `{"params":{"msg":"hi"}}` {
					t.Errorf("structuredContent = %s", sc)
				}
				meta, _ := res.Meta[server.MetaKey].(map[string]any)
				if meta["backend"] == nil || meta["skill"] == nil {
					t.Errorf("_meta = %v", res.Meta)
				}
			})

			t.Run("OutputSchema", func(t *testing.T) {
				res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "test_shape", Arguments: map[string]any{"n": 2}})
				if err != nil || res.IsError {
					t.Fatalf("n=2: %v %+v", err, res)
				}
				res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "test_shape", Arguments: map[string]any{"n": -1}})
				if err != nil {
					t.Fatal(err)
				}
				if e := errorOf(t, res); e.Kind != "skill" || e.Type != "ResultSchema" {
					t.Errorf("n=-1: %+v", e)
				}
			})

			t.Run("Errors", func(t *testing.T) {
				for _, tc := range []struct {
					name, tool string
					args       any
					kind, typ  string
				}{
					{"raises", "test_raises", nil, "skill", "ValueError"},
					{"bad params", "test_echo", map[string]any{"msg": 3}, "invalid", ""},
					{"extra param", "test_echo", map[string]any{"nope": 1}, "invalid", ""},
				} {
					t.Run(tc.name, func(t *testing.T) {
						res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tc.tool, Arguments: tc.args})
						if err != nil {
							t.Fatal(err)
						}
						env := failureOf(t, res)
						if e := env.Error; e.Kind != tc.kind || e.Type != tc.typ || e.Message == "" {
							t.Errorf("error = %+v, want kind %s type %q", e, tc.kind, tc.typ)
						}
						if tc.name == "raises" && env.Stdout != "checked the address\n" {
							t.Errorf("the error lacks what the skill printed before it raised: stdout %q", env.Stdout)
						}
					})
				}
				if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "no_such_tool"}); err == nil {
					t.Error("unknown tool: no error")
				}
			})

			t.Run("Progress", func(t *testing.T) {
				p := &mcp.CallToolParams{Name: "test_sleep", Arguments: map[string]any{"seconds": 0.6}}
				p.SetProgressToken("tok")
				res, err := cs.CallTool(ctx, p)
				if err != nil || res.IsError {
					t.Fatalf("%v %+v", err, res)
				}
				// Notifications may trail the result by a moment.
				deadline := time.Now().Add(2 * time.Second)
				for progress.Load() == 0 && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
				if progress.Load() == 0 {
					t.Error("no progress notification for a 0.6s call reporting every 100ms")
				}
			})

			t.Run("Cancel", func(t *testing.T) {
				pf := pidFile(t)
				cctx, cancel := context.WithCancel(ctx)
				errc := make(chan error, 1)
				go func() {
					_, err := cs.CallTool(cctx, &mcp.CallToolParams{Name: "test_sleep", Arguments: map[string]any{"seconds": 60, "pidfile": pf}})
					errc <- err
				}()
				pid := waitPID(t, pf)
				cancel()
				select {
				case err := <-errc:
					if !errors.Is(err, context.Canceled) {
						t.Errorf("CallTool after cancel: %v", err)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("CallTool did not return after cancel")
				}
				waitGone(t, pid)
			})

			t.Run("PromptAndResource", func(t *testing.T) {
				pr, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "test_echo"})
				if err != nil {
					t.Fatal(err)
				}
				text := pr.Messages[0].Content.(*mcp.TextContent).Text
				if !strings.Contains(text, "comes back unchanged") || !strings.Contains(text, "## Constitution\n\nRepeat the message exactly.") {
					t.Errorf("prompt = %q", text)
				}
				rr, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: server.ResourceURI("test/echo")})
				if err != nil {
					t.Fatal(err)
				}
				if got := rr.Contents[0].Text; !strings.Contains(got, "Repeat the message exactly.") || rr.Contents[0].MIMEType != "text/markdown" {
					t.Errorf("resource = %+v", rr.Contents[0])
				}
			})
		})
	}
}

// waitPID waits for the sleep skill to write its pid.
func waitPID(t *testing.T, file string) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(file); err == nil {
			pid, err := strconv.Atoi(string(b))
			if err != nil {
				t.Fatal(err)
			}
			return pid
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the skill never started")
	return 0
}
