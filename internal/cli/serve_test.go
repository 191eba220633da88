package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/skillbox-dev/skillbox/internal/lockfile"
	"github.com/skillbox-dev/skillbox/internal/trust"
)

// mainEnv makes this test binary act as the skillbox command, so that
// outside clients (the MCP Inspector, the Python tests) can run it.
const mainEnv = "SKILLBOX_CLI_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) == "1" {
		os.Exit(Run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// selfAsSkillbox returns this binary's path and an environment in which it
// is skillbox, with the harness's roots, cache and audit log.
func (h *harness) selfAsSkillbox() (string, []string) {
	h.t.Helper()
	exe, err := os.Executable()
	if err != nil {
		h.t.Fatal(err)
	}
	env := append(os.Environ(), mainEnv+"=1", "SKILLWARE_SKILL_PATH=")
	for k, v := range h.env {
		env = append(env, k+"="+v)
	}
	return exe, env
}

func TestServeFlags(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no mode", []string{"serve"}, "exactly one of --stdio or --http"},
		{"both modes", []string{"serve", "--stdio", "--http", "127.0.0.1:0"}, "exactly one of"},
		{"argument", []string{"serve", "--stdio", "extra"}, "no arguments"},
		{"bad timeout", []string{"serve", "--stdio", "--timeout", "soon"}, "--timeout"},
		{"bad memory", []string{"serve", "--stdio", "--memory", "lots"}, "--memory"},
		{"bad body", []string{"serve", "--stdio", "--max-body", "0"}, "--max-body"},
		{"bad slots", []string{"serve", "--stdio", "--max-concurrent", "0"}, "must be positive"},
		{"bad body memory", []string{"serve", "--stdio", "--max-body-memory", "lots"}, `--max-body-memory "lots"`},
		{"body memory under two bodies", []string{"serve", "--stdio", "--max-body", "4MiB", "--max-body-memory", "6MiB"}, "at least twice --max-body"},
		{"bad header timeout", []string{"serve", "--stdio", "--read-header-timeout", "0s"}, "--read-header-timeout"},
		{"bad body timeout", []string{"serve", "--stdio", "--body-read-timeout", "-1s"}, "--body-read-timeout"},
		{"bad conns", []string{"serve", "--stdio", "--max-conns", "0"}, "--max-conns"},
		{"bad sessions", []string{"serve", "--stdio", "--max-sessions", "-1"}, "--max-sessions"},
		{"bad session idle timeout", []string{"serve", "--stdio", "--session-idle-timeout", "0s"}, "--session-idle-timeout"},
		{"allow-host with port", []string{"serve", "--http", "127.0.0.1:0", "--allow-host", "agent.test:8080"}, `--allow-host "agent.test:8080": want a host name or IP address`},
		{"allow-host url", []string{"serve", "--http", "127.0.0.1:0", "--allow-host", "http://agent.test"}, `--allow-host "http://agent.test"`},
		{"allow-host empty", []string{"serve", "--http", "127.0.0.1:0", "--allow-host", ""}, `--allow-host ""`},
		{"bad level", []string{"serve", "--stdio", "--log-level", "loud"}, "--log-level"},
		{"bad format", []string{"serve", "--stdio", "--log-format", "xml"}, "--log-format"},
		{"bad token", []string{"serve", "--http", "127.0.0.1:0", "--token", "a b"}, "white space"},
		{"bad egress-resolve", []string{"serve", "--stdio", "--egress-resolve", "a.test=not-an-ip"}, `--egress-resolve "a.test=not-an-ip": "not-an-ip" is not an IP address`},
		// serve takes run's grant flags, policy and secret sources included.
		{"missing env file", []string{"serve", "--stdio", "--env-file", "/nonexistent/skillbox.env"}, "/nonexistent/skillbox.env"},
		{"missing secrets dir", []string{"serve", "--stdio", "--secrets-dir", "/nonexistent/dir"}, "--secrets-dir"},
		{"empty read path", []string{"serve", "--stdio", "--allow-read", ""}, "--allow-read: empty path"},
		{"missing policy", []string{"serve", "--stdio", "--policy", "/nonexistent/policy.yaml"}, "/nonexistent/policy.yaml"},
		// and run's --locked: a lockfile that cannot be loaded stops the start.
		{"lockfile without locked", []string{"serve", "--stdio", "--lockfile", "x.lock"}, "--lockfile is used only with --locked"},
		{"missing lockfile", []string{"serve", "--stdio", "--locked", "--lockfile", "/nonexistent/skills.lock"}, "no lockfile at /nonexistent/skills.lock; create one with 'skillbox lock --lockfile /nonexistent/skills.lock'"},
		{"missing default lockfile", []string{"serve", "--stdio", "--locked"}, "no lockfile at skills.lock"},
		// --warm names one skill id per flag.
		{"warm without id", []string{"serve", "--stdio", "--warm"}, "flag needs an argument: -warm"},
		{"warm not an id", []string{"serve", "--stdio", "--warm", "echo"}, `--warm "echo": want a skill id (category/name)`},
		{"warm path", []string{"serve", "--stdio", "--warm", "./skills/test/echo"}, "want a skill id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := h.run(tc.args...)
			if o.code != 2 || !strings.Contains(o.stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", o.code, o.stderr, tc.want)
			}
		})
	}
}

// serveStdio runs `serve --stdio` with args in the harness and connects an
// MCP client to it. Closing inW ends the server, which then sends its exit
// code on code; stderr collects its logs.
func (h *harness) serveStdio(args ...string) (cs *mcp.ClientSession, inW *io.PipeWriter, code chan int, stderr *syncBuffer) {
	h.t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	stderr = &syncBuffer{}
	env := Env{Getenv: func(k string) string { return h.env[k] }, LookupEnv: func(k string) (string, bool) { v, ok := h.env[k]; return v, ok }}
	code = make(chan int, 1)
	go func() {
		code <- RunContext(context.Background(), append([]string{"serve", "--stdio"}, args...), inR, outW, stderr, env)
		outW.Close()
	}()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil).Connect(context.Background(), &mcp.IOTransport{Reader: outR, Writer: inW}, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return cs, inW, code, stderr
}

// TestServeStdio speaks MCP to `serve --stdio` over its standard input and
// output; its logs must stay on standard error.
func TestServeStdio(t *testing.T) {
	h := newHarness(t)
	cs, inW, code, stderr := h.serveStdio("--backend", "process")
	ctx := context.Background()
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range tools.Tools {
		names = append(names, tool.Name)
	}
	if !slices.Contains(names, "test_echo") || !slices.Contains(names, "text_word_stats") {
		t.Errorf("tools = %v", names)
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "test_echo", Arguments: map[string]any{"msg": "hi"}})
	if err != nil || res.IsError {
		t.Fatalf("call: %v %+v", err, res)
	}
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "test_raises"})
	if err != nil || !res.IsError {
		t.Fatalf("raises: %v %+v", err, res)
	}
	if text := res.Content[0].(*mcp.TextContent).Text; !strings.Contains(text, `"kind":"skill"`) {
		t.Errorf("raises: %s", text)
	}
	cs.Close()
	inW.Close()
	select {
	case c := <-code:
		if c != 0 {
			t.Errorf("serve exited %d: %s", c, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve --stdio did not stop when its input closed")
	}
	if !strings.Contains(stderr.String(), "serving MCP over stdio") {
		t.Errorf("stderr has no log: %q", stderr.String())
	}
}

// TestServeHTTP checks the API's call envelope against `run --json`.
func TestServeHTTP(t *testing.T) {
	h := newHarness(t)
	var stderr syncBuffer
	env := Env{Getenv: func(k string) string { return h.env[k] }, LookupEnv: func(k string) (string, bool) { v, ok := h.env[k]; return v, ok }}
	ctx, cancel := context.WithCancel(context.Background())
	code := make(chan int, 1)
	go func() {
		code <- RunContext(ctx, []string{"serve", "--http", "127.0.0.1:0", "--backend", "process"}, strings.NewReader(""), io.Discard, &stderr, env)
	}()
	defer func() {
		cancel()
		if c := <-code; c != 0 {
			t.Errorf("serve exited %d: %s", c, stderr.String())
		}
	}()
	addr := regexp.MustCompile(`msg="serving HTTP" addr=(\S+)`)
	var url string
	for deadline := time.Now().Add(10 * time.Second); url == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m := addr.FindStringSubmatch(stderr.String()); m != nil {
			url = "http://" + m[1]
		}
	}
	if url == "" {
		t.Fatalf("server did not start: %s", stderr.String())
	}
	resp, err := http.Post(url+"/v1/skills/test/echo/call", "application/json", strings.NewReader(`{"msg":"hi"}`))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	want := h.run("run", "test/echo", "--backend", "process", "--params", `{"msg":"hi"}`, "--json").envelope(t)
	for _, m := range []map[string]any{got, want} {
		delete(m, "duration_ms")
		delete(m, "warnings")
	}
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(want)
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Errorf("HTTP envelope differs from run --json:\n got %s\nwant %s", gotJSON, wantJSON)
	}
}

// TestServeAllowHost: serve --http refuses a Host that is no loopback
// name (DNS rebinding) on the API as on /mcp, naming --allow-host, and
// --allow-host adds a name.
func TestServeAllowHost(t *testing.T) {
	h := newHarness(t)
	url := h.startServeHTTP("--backend", "process", "--allow-host", "agent.test", "--max-body-memory", "16MiB", "--max-conns", "64",
		"--read-header-timeout", "5s", "--body-read-timeout", "5s")
	get := func(path, host string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", url+path, nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, path := range []string{"/v1/health", "/v1/skills", "/mcp"} {
		if code, body := get(path, "rebound.example"); code != http.StatusForbidden || !strings.Contains(body, `"kind":"denied"`) || !strings.Contains(body, "--allow-host rebound.example") {
			t.Errorf("%s with Host rebound.example: %d %s; want 403 naming --allow-host", path, code, body)
		}
	}
	for _, host := range []string{"agent.test", "localhost"} {
		if code, body := get("/v1/skills", host); code != http.StatusOK {
			t.Errorf("/v1/skills with Host %s: %d %s", host, code, body)
		}
	}
}

// startServeHTTP starts `serve --http 127.0.0.1:0 args...` and returns its
// URL; the server stops when the test ends.
func (h *harness) startServeHTTP(args ...string) string {
	h.t.Helper()
	var stderr syncBuffer
	env := Env{Getenv: func(k string) string { return h.env[k] }, LookupEnv: func(k string) (string, bool) { v, ok := h.env[k]; return v, ok }}
	ctx, cancel := context.WithCancel(context.Background())
	code := make(chan int, 1)
	go func() {
		code <- RunContext(ctx, append([]string{"serve", "--http", "127.0.0.1:0"}, args...), strings.NewReader(""), io.Discard, &stderr, env)
	}()
	h.t.Cleanup(func() {
		cancel()
		if c := <-code; c != 0 {
			h.t.Errorf("serve exited %d: %s", c, stderr.String())
		}
	})
	addr := regexp.MustCompile(`msg="serving HTTP" addr=(\S+)`)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m := addr.FindStringSubmatch(stderr.String()); m != nil {
			return "http://" + m[1]
		}
		select {
		case c := <-code:
			code <- c
			h.t.Fatalf("serve exited %d: %s", c, stderr.String())
		default:
		}
	}
	h.t.Fatalf("server did not start: %s", stderr.String())
	return ""
}

// TestServeLocked: with --locked every call, over the HTTP API and over
// MCP, is checked against the lockfile as run --locked checks it.
func TestServeLocked(t *testing.T) {
	h := newHarness(t)
	if o := h.run("lock", "test/echo"); o.code != 0 {
		t.Fatalf("lock: %d %s", o.code, o.stderr)
	}
	url := h.startServeHTTP("--backend", "process", "--locked")
	api := func(id string) (int, map[string]any) {
		t.Helper()
		resp, err := http.Post(url+"/v1/skills/"+id+"/call", "application/json", strings.NewReader(`{"msg":"hi"}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, m
	}
	if code, m := api("test/echo"); code != http.StatusOK || m["ok"] != true {
		t.Errorf("locked skill over the API: %d %v", code, m)
	}
	// A skill missing from the lockfile is not offered: not listed, and a
	// call to it is not_found, saying why.
	code, m := api("test/raises")
	if code != http.StatusNotFound || !strings.Contains(toJSON(m), "only the skills in its lockfile") {
		t.Errorf("unlocked skill over the API: %d %v; want 404 naming the lockfile", code, m)
	}
	resp, err := http.Get(url + "/v1/skills")
	if err != nil {
		t.Fatal(err)
	}
	listing, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(listing), "test/echo") || strings.Contains(string(listing), "test/raises") {
		t.Errorf("listing under --locked: %s", listing)
	}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil).Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: url + "/mcp"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "test_echo", Arguments: map[string]any{"msg": "hi"}})
	if err != nil || res.IsError {
		t.Errorf("locked skill over MCP: %v %+v", err, res)
	}
	tools, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range tools.Tools {
		if tool.Name == "test_raises" {
			t.Errorf("MCP lists the unlocked skill %s", tool.Name)
		}
	}
	if res, err = cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "test_raises"}); err == nil && !res.IsError {
		t.Errorf("unlocked skill over MCP ran: %+v", res)
	}
	// The lockfile was read at start: a skill locked later is still not
	// served.
	if o := h.run("lock", "test/raises"); o.code != 0 {
		t.Fatalf("lock: %d %s", o.code, o.stderr)
	}
	if code, m := api("test/raises"); code != http.StatusNotFound {
		t.Errorf("skill locked after the start: %d %v", code, m)
	}
	// The locked skill's content drifts: refused from its next call.
	os.WriteFile(filepath.Join(h.project, "skills", "test", "echo", "new.txt"), []byte("x"), 0o644)
	if code, m := api("test/echo"); code != http.StatusForbidden || !strings.Contains(toJSON(m), "lockfile digest") {
		t.Errorf("changed locked skill: %d %v", code, m)
	}
}

// TestServeLockedGrants: grants wider than the locked ones are refused,
// here over MCP on stdio; a broken lockfile stops the start.
func TestServeLockedGrants(t *testing.T) {
	h := newHarness(t)
	if o := h.run("lock", "test/echo"); o.code != 0 {
		t.Fatalf("lock: %d %s", o.code, o.stderr)
	}
	h.env["ECHO_TOKEN"] = "t"
	cs, inW, code, stderr := h.serveStdio("--backend", "process", "--locked", "--allow-env", "ECHO_TOKEN")
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "test_echo", Arguments: map[string]any{"msg": "hi"}})
	if err != nil || !res.IsError || !strings.Contains(res.Content[0].(*mcp.TextContent).Text, "lockfile grants.env") {
		t.Errorf("grant wider than the lock over MCP stdio: %v %+v", err, res)
	}
	cs.Close()
	inW.Close()
	if c := <-code; c != 0 {
		t.Errorf("serve exited %d: %s", c, stderr.String())
	}

	os.WriteFile(filepath.Join(h.project, "skills.lock"), []byte(`{"version": 1, "skills": {"test/echo": {"digest": "nope"}}}`), 0o644)
	if o := h.run("serve", "--stdio", "--locked"); o.code != 2 || !strings.Contains(o.stderr, "lockfile skills.lock") {
		t.Errorf("broken lockfile: exit %d %s", o.code, o.stderr)
	}
}

// TestInspectorCLI drives `serve --stdio` with a third-party MCP client:
// the MCP Inspector's command-line mode, installed by scripts/setup-npm.
func TestInspectorCLI(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed: the MCP Inspector integration test needs node and npm (then scripts/setup-npm)")
	}
	inspector, err := filepath.Abs("../../.tools/npm/node_modules/.bin/mcp-inspector")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(inspector); err != nil {
		t.Skip("the MCP Inspector is not installed: run scripts/setup-npm (scripts/setup does when npm is present)")
	}
	h := newHarness(t)
	exe, env := h.selfAsSkillbox()
	inspect := func(args ...string) map[string]any {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, inspector, append([]string{"--cli", exe, "serve", "--stdio", "--backend", "process"}, args...)...)
		cmd.Env = env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("inspector %v: %v\nstdout: %s\nstderr: %s", args, err, stdout.String(), stderr.String())
		}
		var out map[string]any
		if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
			t.Fatalf("inspector %v: output is not JSON: %v\n%s", args, err, stdout.String())
		}
		return out
	}

	list := inspect("--method", "tools/list")
	var names []string
	for _, tool := range list["tools"].([]any) {
		names = append(names, tool.(map[string]any)["name"].(string))
	}
	if !slices.Contains(names, "test_echo") || !slices.Contains(names, "text_word_stats") {
		t.Errorf("tools/list names = %v", names)
	}
	ok := inspect("--method", "tools/call", "--tool-name", "text_word_stats", "--tool-arg", "text=One two. Three!")
	if sc, _ := ok["structuredContent"].(map[string]any); sc["words"] != 3.0 || ok["isError"] == true {
		t.Errorf("tools/call text_word_stats = %v", ok)
	}
	bad := inspect("--method", "tools/call", "--tool-name", "test_raises")
	if bad["isError"] != true || !strings.Contains(toJSON(bad["content"]), `\"kind\":\"skill\"`) {
		t.Errorf("tools/call test_raises = %v", bad)
	}
	prompt := inspect("--method", "prompts/get", "--prompt-name", "text_word_stats")
	if !strings.Contains(toJSON(prompt), "Constitution") {
		t.Errorf("prompts/get = %v", prompt)
	}
}

// TestPythonClient runs the Python client's unittest suite against this
// binary as skillbox.
func TestPythonClient(t *testing.T) {
	dir, err := filepath.Abs("../../clients/python")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t)
	exe, env := h.selfAsSkillbox()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "python3", "-m", "unittest", "discover", "-s", "tests", "-v")
	cmd.Dir = dir
	cmd.Env = append(env, "SKILLBOX_BIN="+exe, "PYTHONDONTWRITEBYTECODE=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python client tests failed: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServeLockedLimits: a --locked server runs a skill locked at a
// timeout other than its manifest's with the locked timeout (the lock
// check refused it for asking the manifest's 30s), over the HTTP API, MCP
// over HTTP and MCP on stdio, and accepts the lock's entry by the digest a
// signed bundle had before signatures were left out of bundle digests, as
// run --locked does: both are the Runtime's, not run's.
func TestServeLockedLimits(t *testing.T) {
	h := newHarness(t)
	h.signAndLock(t)
	// callTimeout is the timeout of the last call of test/echo audited,
	// and whether it warned of the legacy digest.
	callTimeout := func() (any, bool) {
		t.Helper()
		recs := h.auditRecords()
		for i := len(recs) - 1; i >= 0; i-- {
			if recs[i]["event"] == "call" && recs[i]["skill"] == "test/echo" {
				g, _ := recs[i]["grants"].(map[string]any)
				return g["timeout"], strings.Contains(toJSON(recs[i]["warnings"]), "its digest from before signatures")
			}
		}
		t.Fatal("no call of test/echo audited")
		return nil, false
	}

	url := h.startServeHTTP("--backend", "process", "--locked")
	resp, err := http.Post(url+"/v1/skills/test/echo/call", "application/json", strings.NewReader(`{"msg":"hi"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("skill locked at 5s over the API: %d %s", resp.StatusCode, body)
	} else if got, _ := callTimeout(); got != "5s" {
		t.Errorf("served locked call over the API ran with timeout %v, want the locked 5s", got)
	}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil).Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: url + "/mcp"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "test_echo", Arguments: map[string]any{"msg": "hi"}}); err != nil || res.IsError {
		t.Errorf("skill locked at 5s over MCP: %v %s", err, toJSON(res))
	} else if got, _ := callTimeout(); got != "5s" {
		t.Errorf("served locked call over MCP ran with timeout %v, want the locked 5s", got)
	}

	// The lock pins the signed skill by its legacy digest: the same files
	// are served, with a warning saying how to record the current digest.
	dir := filepath.Join(h.project, "skills", "test", "echo")
	legacy, ok, err := trust.LegacyDigest(dir)
	if err != nil || !ok {
		t.Fatalf("LegacyDigest: %v %v", ok, err)
	}
	lock, err := lockfile.Load(filepath.Join(h.project, lockfile.Name))
	if err != nil {
		t.Fatal(err)
	}
	e := lock.Skills["test/echo"]
	e.Digest = legacy
	lock.Skills["test/echo"] = e
	if err := lock.Save(); err != nil {
		t.Fatal(err)
	}
	cs2, inW, code, stderr := h.serveStdio("--backend", "process", "--locked")
	res, err := cs2.CallTool(context.Background(), &mcp.CallToolParams{Name: "test_echo", Arguments: map[string]any{"msg": "hi"}})
	if err != nil || res.IsError {
		t.Errorf("skill locked at 5s by its legacy digest over MCP stdio: %v %s", err, toJSON(res))
	} else if got, warned := callTimeout(); got != "5s" || !warned {
		t.Errorf("served call of the legacy entry: timeout %v (want the locked 5s), warned of the legacy digest %v", got, warned)
	}
	cs2.Close()
	inW.Close()
	if c := <-code; c != 0 {
		t.Errorf("serve exited %d: %s", c, stderr.String())
	}
}

// TestServeSeesTrustChanges: a running server reads the trust store again
// when it changes. untrust revokes from the next call, over the API and
// over MCP; a skill edited and trusted again runs again; a store broken
// while serving denies every external skill, saying so.
func TestServeSeesTrustChanges(t *testing.T) {
	h := newHarness(t)
	ext := h.external()
	if o := h.run("trust", "test/echo", "--yes"); o.code != 0 {
		t.Fatalf("trust: %d %s", o.code, o.stderr)
	}
	url := h.startServeHTTP("--backend", "process")
	api := func() (int, string) {
		t.Helper()
		resp, err := http.Post(url+"/v1/skills/test/echo/call", "application/json", strings.NewReader(`{"msg":"hi"}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := api(); code != http.StatusOK {
		t.Fatalf("trusted skill: %d %s", code, body)
	}

	if o := h.run("untrust", "test/echo"); o.code != 0 {
		t.Fatalf("untrust: %d %s", o.code, o.stderr)
	}
	if code, body := api(); code != http.StatusForbidden || !strings.Contains(body, "is not trusted") {
		t.Errorf("call after untrust: %d %s; want 403 not trusted", code, body)
	}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil).Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: url + "/mcp"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "test_echo", Arguments: map[string]any{"msg": "hi"}})
	if err != nil || !res.IsError || !strings.Contains(toJSON(res.Content), "is not trusted") {
		t.Errorf("MCP call after untrust: %v %s; want a denial", err, toJSON(res))
	}

	// Edited, then trusted again: the server takes the new pin.
	if err := os.WriteFile(filepath.Join(ext, "test", "echo", "notes.txt"), []byte("v2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if o := h.run("trust", "test/echo", "--yes"); o.code != 0 {
		t.Fatalf("trust again: %d %s", o.code, o.stderr)
	}
	if code, body := api(); code != http.StatusOK {
		t.Errorf("call after trusting the edit: %d %s", code, body)
	}

	// A store that no longer parses denies (it does not keep the old
	// grants), and says why.
	store := filepath.Join(h.env["XDG_CONFIG_HOME"], "skillbox", "trust.json")
	if err := os.WriteFile(store, []byte("{\"version\": 1,\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, body := api(); code == http.StatusOK || !strings.Contains(body, "nothing in it is trusted") {
		t.Errorf("call with a broken store: %d %s; want a refusal naming the store", code, body)
	}
}
