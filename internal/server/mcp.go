package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime/debug"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/skillbox-dev/skillbox"
	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/schema"
)

// MetaKey is the _meta key under which tool results carry what ran
// (skill, backend, duration_ms, warnings, stdout, stderr).
const MetaKey = "dev.skillbox/call"

// ResourceURI is the URI of a skill's guidance resource.
func ResourceURI(id string) string {
	return "skillbox://skills/" + id + "/instructions"
}

// newMCP returns an MCP server offering every catalogue skill as a tool, a
// prompt and a resource. With wait set, tool calls wait for a free call
// slot (stdio); otherwise they take over the one the HTTP layer took for
// their POST, and end with that POST (takeOver).
func (s *Server) newMCP(wait bool) *mcp.Server {
	m := mcp.NewServer(&mcp.Implementation{Name: "skillbox", Title: "skillbox", Version: s.cfg.Version}, &mcp.ServerOptions{
		Instructions: "Each tool runs a skill in a sandbox. Read a skill's prompt (or its skillbox://skills/{id}/instructions resource) for how to use it and the rules it must follow.",
		Logger:       s.log,
		// No logging capability: operational logs go to the operator.
		Capabilities: &mcp.ServerCapabilities{},
	})
	for _, e := range s.skills {
		m.AddTool(s.mcpTool(e), s.toolHandler(e, wait))
		m.AddPrompt(&mcp.Prompt{
			Name:        e.name,
			Title:       e.skill.ID,
			Description: fmt.Sprintf("How to use the %s tool: its instructions and constitution.", e.name),
		}, s.promptHandler(e))
		m.AddResource(&mcp.Resource{
			URI:         ResourceURI(e.skill.ID),
			Name:        e.name,
			Title:       e.skill.ID + " instructions",
			Description: "instructions.md of " + e.skill.ID + ", followed by its constitution",
			MIMEType:    "text/markdown",
		}, s.resourceHandler(e))
	}
	return m
}

// mcpTool is e as an MCP tool: the `skillbox schema --format mcp` export.
func (s *Server) mcpTool(e *entry) *mcp.Tool {
	out, err := schema.Export(e.tool, schema.FormatMCP)
	if err != nil { // only for a tool without an id, which List never yields
		panic(err)
	}
	m := out.(map[string]any)
	t := &mcp.Tool{Name: e.name, Title: e.skill.ID, Description: e.tool.Description, InputSchema: m["inputSchema"]}
	if o, ok := m["outputSchema"]; ok {
		t.OutputSchema = o
	}
	return t
}

func (s *Server) toolHandler(e *entry, wait bool) mcp.ToolHandler {
	return func(ctx context.Context, req *mcp.CallToolRequest) (answer *mcp.CallToolResult, _ error) {
		// The SDK runs a handler in a goroutine of its own that nothing
		// recovers: a panic would end the server, every session with it.
		// It fails the call instead, as net/http does for /v1/.
		defer func() {
			if r := recover(); r != nil {
				s.log.Error("MCP tool call panicked", "skill", e.skill.ID, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				answer = toolError(errdefs.New(errdefs.Internal, "internal error serving %s: %v", e.skill.ID, r))
			}
		}()
		if wait {
			if err := s.calls.acquire(ctx); err != nil {
				return toolError(cancelError(ctx, s.stopCtx, errdefs.Wrap(errdefs.Unavailable, err, "waiting for a call slot"))), nil
			}
			defer s.calls.release()
		} else {
			var release func()
			var ok bool
			if ctx, release, ok = s.takeOver(ctx, req.Extra); !ok {
				// Nobody is left to answer: the POST has ended.
				s.log.Info("call", "via", "mcp", "skill", e.skill.ID, "outcome", "error", "kind", string(errdefs.Canceled), "err", "not run: its client went away first")
				return toolError(errdefs.New(errdefs.Canceled, "call cancelled: the client went away before it started")), nil
			}
			defer release()
		}
		if tok := req.Params.GetProgressToken(); tok != nil && req.Session != nil {
			stop := s.reportProgress(ctx, req.Session, tok, e.skill.ID)
			defer stop()
		}
		res, err := s.call(ctx, e, req.Params.Arguments, "mcp")
		if err != nil {
			return toolError(err), nil
		}
		r := &mcp.CallToolResult{
			Content: []mcp.Content{&mcp.TextContent{Text: string(res.Value)}},
			Meta:    mcp.Meta{MetaKey: callMeta(res)},
		}
		if e.out != nil {
			// A tool with an output schema must return conforming
			// structured content; a skill that does not is at fault.
			if err := e.out.ValidateResult(res.Value); err != nil {
				return toolError(&errdefs.SkillError{Type: "ResultSchema", Message: "result does not match the manifest's outputs schema: " + err.Error()}), nil
			}
			r.StructuredContent = res.Value
		} else if isObject(res.Value) {
			r.StructuredContent = res.Value
		}
		return r, nil
	}
}

// callMeta is what ran, under MetaKey: the skill's own result stays the
// structured content, untouched. "warm" is there only when the call ran
// warm (calls of this skill may share state that its import created).
func callMeta(res *skillbox.Result) map[string]any {
	m := map[string]any{
		"skill": res.Skill, "backend": res.Backend, "duration_ms": res.Duration.Milliseconds(),
		"warnings": res.Warnings, "stdout": string(res.Stdout), "stderr": string(res.Stderr),
	}
	if res.Warm {
		m["warm"] = true
	}
	return m
}

// toolError is err as a tool result: isError, and the failure envelope of
// `skillbox run --json` as text, so the kind reaches the model.
func toolError(err error) *mcp.CallToolResult {
	b, _ := json.Marshal(errorEnvelope(err))
	return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: string(b)}}}
}

func isObject(v json.RawMessage) bool {
	for _, c := range v {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return c == '{'
	}
	return false
}

// reportProgress sends a progress notification every ProgressInterval
// until the returned func is called. Progress counts elapsed seconds; the
// total is unknown.
func (s *Server) reportProgress(ctx context.Context, ss *mcp.ServerSession, token any, id string) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		start := time.Now()
		t := time.NewTicker(s.cfg.ProgressInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				el := time.Since(start)
				err := ss.NotifyProgress(ctx, &mcp.ProgressNotificationParams{
					ProgressToken: token,
					Progress:      el.Seconds(),
					Message:       fmt.Sprintf("%s running for %s", id, el.Round(100*time.Millisecond)),
				})
				if err != nil && ctx.Err() == nil {
					s.log.Debug("progress notification failed", "skill", id, "err", err.Error())
				}
			}
		}
	}()
	return func() { cancel(); <-done }
}

func (s *Server) promptHandler(e *entry) mcp.PromptHandler {
	return func(ctx context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		return &mcp.GetPromptResult{
			Description: e.tool.Description,
			Messages: []*mcp.PromptMessage{{
				Role:    "user",
				Content: &mcp.TextContent{Text: fmt.Sprintf("You can use the tool %s (skill %s).\n\n%s", e.name, e.skill.ID, guidance(e.skill))},
			}},
		}, nil
	}
}

func (s *Server) resourceHandler(e *entry) mcp.ResourceHandler {
	uri := ResourceURI(e.skill.ID)
	return func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		if req.Params.URI != uri {
			return nil, mcp.ResourceNotFoundError(req.Params.URI)
		}
		return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: uri, MIMEType: "text/markdown", Text: guidance(e.skill)}}}, nil
	}
}

// ServeStdio serves MCP over r and w (a client's pipe: standard input and
// output) until ctx ends or the client closes r. Nothing else may write to
// w.
func (s *Server) ServeStdio(ctx context.Context, r io.ReadCloser, w io.WriteCloser) error {
	s.log.Info("serving MCP over stdio", "skills", len(s.skills))
	err := s.newMCP(true).Run(ctx, &mcp.IOTransport{Reader: r, Writer: w})
	if ctx.Err() != nil || err == io.EOF {
		return nil
	}
	return err
}
