package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Skillbox is a skillbox binary and the skill it runs, for the modes that
// start it as a process.
type Skillbox struct {
	// Exe is the binary; Env its environment (its cache, state and config
	// in the run's own folders, so that nothing of the user's changes) and
	// Dir its working folder.
	Exe string
	Env []string
	Dir string
	// ID is the skill's id and Params the call's params.
	ID, Params string
}

// RunMode is `skillbox run` as a whole process per call; backend "" is
// the default.
func (s Skillbox) RunMode(name, backend string) Mode {
	argv := []string{s.Exe, "run"}
	if backend != "" {
		argv = append(argv, "--backend", backend)
	}
	return Mode{Name: name, Kind: Process, Argv: append(argv, s.ID, "--params", s.Params), Env: s.Env, Dir: s.Dir}
}

// ServeHTTPMode is `skillbox serve --http` on a loopback port, the HTTP
// API (POST /v1/skills/ID/call) over one kept-alive connection.
func (s Skillbox) ServeHTTPMode(name string) Mode {
	return Mode{Name: name, Kind: Call, Open: func(ctx context.Context) (Caller, error) {
		cmd := exec.Command(s.Exe, "serve", "--http", "127.0.0.1:0", "--log-format", "json")
		ownSession(cmd)
		cmd.Env, cmd.Dir = s.Env, s.Dir
		logs, err := cmd.StderrPipe()
		if err != nil {
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		stop := func() error {
			cmd.Process.Signal(syscall.SIGTERM)
			return cmd.Wait()
		}
		addr, err := serveAddr(logs, 60*time.Second)
		if err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			return nil, err
		}
		return &httpCaller{url: "http://" + addr + "/v1/skills/" + s.ID + "/call", params: s.Params, envelope: true, stop: stop, pid: cmd.Process.Pid}, nil
	}}
}

// serveAddr reads serve's JSON log lines until the one that names the
// address it listens on, then drains the rest in the background.
func serveAddr(logs interface{ Read([]byte) (int, error) }, d time.Duration) (string, error) {
	type res struct {
		addr string
		err  error
	}
	ch := make(chan res, 1)
	go func() {
		sc := bufio.NewScanner(logs)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		var last string
		for sc.Scan() {
			var rec struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "serving HTTP" && rec.Addr != "" {
				ch <- res{addr: rec.Addr}
				for sc.Scan() {
				}
				return
			}
			last = sc.Text()
		}
		ch <- res{err: fmt.Errorf("skillbox serve ended before listening: %s", clip([]byte(last)))}
	}()
	select {
	case r := <-ch:
		return r.addr, r.err
	case <-time.After(d):
		return "", fmt.Errorf("skillbox serve did not listen within %s", d)
	}
}

// MCPStdioMode is `skillbox serve --stdio`: an MCP session over pipes
// (initialize once), one tools/call per call.
func (s Skillbox) MCPStdioMode(name, tool string) Mode {
	return Mode{Name: name, Kind: Call, Open: func(ctx context.Context) (Caller, error) {
		cmd := exec.Command(s.Exe, "serve", "--stdio", "--log-level", "warn")
		ownSession(cmd)
		cmd.Env, cmd.Dir = s.Env, s.Dir
		call := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":%q,"arguments":%s}}`+"\n", tool, oneLine(s.Params))
		p, err := startPipe(cmd, []byte(call), mcpResult)
		if err != nil {
			return nil, err
		}
		const initialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"skillbox-bench","version":"1"}}}` + "\n"
		if _, err := p.roundTrip(ctx, []byte(initialize), func(line []byte) (json.RawMessage, error) {
			return rpcAnswer(line, func(r json.RawMessage) (json.RawMessage, error) { return r, nil })
		}); err != nil {
			p.Close()
			return nil, fmt.Errorf("initialize: %w", err)
		}
		if _, err := p.in.Write([]byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}` + "\n")); err != nil {
			p.Close()
			return nil, err
		}
		return p, nil
	}}
}

// rpcAnswer returns nil, nil for a line that is not the answer with id 1
// (a notification), the error of an error answer, else what result makes
// of the answer's result.
func rpcAnswer(line []byte, result func(json.RawMessage) (json.RawMessage, error)) (json.RawMessage, error) {
	var msg struct {
		ID     json.RawMessage `json:"id"`
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(line, &msg); err != nil {
		return nil, fmt.Errorf("not JSON-RPC: %s", clip(line))
	}
	if strings.TrimSpace(string(msg.ID)) != "1" {
		return nil, nil
	}
	if msg.Error != nil {
		return nil, fmt.Errorf("JSON-RPC error: %s", msg.Error.Message)
	}
	return result(msg.Result)
}

// mcpResult is a tools/call answer's structured content.
func mcpResult(line []byte) (json.RawMessage, error) {
	return rpcAnswer(line, func(r json.RawMessage) (json.RawMessage, error) {
		var res struct {
			IsError           bool            `json:"isError"`
			StructuredContent json.RawMessage `json:"structuredContent"`
			Content           []struct {
				Text string `json:"text"`
			} `json:"content"`
		}
		if err := json.Unmarshal(r, &res); err != nil {
			return nil, err
		}
		switch {
		case res.IsError:
			return nil, fmt.Errorf("tool error: %s", clip(r))
		case len(res.StructuredContent) > 0:
			return res.StructuredContent, nil
		case len(res.Content) > 0:
			return json.RawMessage(res.Content[0].Text), nil
		}
		return nil, fmt.Errorf("no result in %s", clip(r))
	})
}
