package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/skillbox-dev/skillbox/internal/schema"
	"github.com/skillbox-dev/skillbox/sandbox/sandboxtest"
)

// TestServeCrossCallAttacks runs the corpus's cross-call attacks through
// `serve` on the linux backend, as an MCP client and an HTTP client would:
// one server, call 1 plants with a secret, call 2 of the same skill with
// other params must get none of it. The corpus is an external root,
// trusted by --trust-remote-code as an operator serving untrusted skills
// would. Every state/* attack goes over MCP on stdio; import-mmap,
// harness-override and deep-scratch also over the HTTP API.
func TestServeCrossCallAttacks(t *testing.T) {
	corpus, err := filepath.Abs("../../testdata/attacks")
	if err != nil {
		t.Fatal(err)
	}
	requireLinuxBackend(t)
	h := newHarness(t)
	h.env["SKILLWARE_SKILL_PATH"] = corpus
	args := []string{"--backend", "linux", "--trust-remote-code"}

	t.Run("mcp-stdio", func(t *testing.T) {
		cs, inW, code, stderr := h.serveStdio(args...)
		defer func() {
			cs.Close()
			inW.Close()
			if c := <-code; c != 0 {
				t.Errorf("serve exited %d: %s", c, stderr.String())
			}
		}()
		call := mcpCall(cs)
		sandboxtest.RunCrossCall(t, call, sandboxtest.StateAttacks(), false)
		// The server still serves another skill after the attacks.
		if v, err := call(t, "test/echo", map[string]any{"msg": "after"}); err != nil || !strings.Contains(string(v), `"after"`) {
			t.Errorf("test/echo after the attacks: %v / %s", err, v)
		}
	})
	t.Run("http", func(t *testing.T) {
		url := h.startServeHTTP(args...)
		var attacks []sandboxtest.StateAttack
		for _, n := range []string{"state/import-mmap", "state/harness-override", "state/deep-scratch"} {
			attacks = append(attacks, sandboxtest.FindStateAttack(n))
		}
		sandboxtest.RunCrossCall(t, httpCall(url), attacks, false)
	})
}

// mcpCall calls a skill as the MCP tool named after its id; a tool error
// comes back as an error holding its text.
func mcpCall(cs *mcp.ClientSession) sandboxtest.CallFunc {
	return func(t *testing.T, id string, params map[string]any) (json.RawMessage, error) {
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: schema.ToolName(id), Arguments: params})
		if err != nil {
			return nil, err
		}
		if len(res.Content) == 0 {
			return nil, fmt.Errorf("tool %s returned no content", id)
		}
		text := res.Content[0].(*mcp.TextContent).Text
		if res.IsError {
			return nil, errors.New(text)
		}
		return json.RawMessage(text), nil
	}
}

// httpCall calls a skill through POST /v1/skills/{id}/call; an envelope
// with "ok": false comes back as an error holding the body.
func httpCall(url string) sandboxtest.CallFunc {
	return func(t *testing.T, id string, params map[string]any) (json.RawMessage, error) {
		body, err := json.Marshal(params)
		if err != nil {
			return nil, err
		}
		resp, err := http.Post(url+"/v1/skills/"+id+"/call", "application/json", strings.NewReader(string(body)))
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var env struct {
			OK     bool            `json:"ok"`
			Result json.RawMessage `json:"result"`
			Error  json.RawMessage `json:"error"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
			return nil, fmt.Errorf("HTTP %d: %v", resp.StatusCode, err)
		}
		if !env.OK {
			return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, env.Error)
		}
		return env.Result, nil
	}
}
