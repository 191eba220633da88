package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// Driver runs a skill in-process the way Skillware's loader does
// (testdata/skillware/README.md): a stand-in BaseSkill under
// skillware.core.base_skill, the skill folder registered as a package,
// skill.py loaded from it and its one BaseSkill subclass instantiated.
// Run it as `python3 -I -B -c Driver MODE SKILL_DIR [PARAMS]`:
//
//   - once: execute(PARAMS) once and print the result as JSON (a whole
//     process per call: the bare baseline);
//   - lines: one call per line of standard input (params as JSON), one
//     result per line on standard output;
//   - http: an HTTP/1.1 server on 127.0.0.1 (its port printed first, a
//     thread per connection) whose every POST body is the params and
//     whose answer is the result;
//   - http-fork: the same server, but each call runs in a child forked for
//     it, which imports the skill, makes the call, writes the result to
//     its parent and exits: single-use calls as skillbox makes them,
//     without a sandbox (the server never imports the skill itself).
//
// Otherwise the skill is imported once per process; lines and http call
// the same instance, as a loader in an agent's process would.
const Driver = `import importlib.util, json, sys, types, abc, os

class BaseSkill(abc.ABC):
    def __init__(self, config=None):
        self.config = config or {}
    def credential(self, key):
        v = self.config.get(key) or os.environ.get(key)
        return v or None
    @property
    @abc.abstractmethod
    def manifest(self): ...
    @abc.abstractmethod
    def execute(self, params): ...

for name in ("skillware", "skillware.core", "skillware.core.base_skill"):
    m = types.ModuleType(name)
    m.__path__ = []
    sys.modules[name] = m
sys.modules["skillware.core.base_skill"].BaseSkill = BaseSkill

def load(skill_dir):
    pkg = types.ModuleType("skillware_skill")
    pkg.__path__ = [skill_dir]
    sys.modules["skillware_skill"] = pkg
    spec = importlib.util.spec_from_file_location("skillware_skill.skill", os.path.join(skill_dir, "skill.py"))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    cls = [c for c in vars(mod).values() if isinstance(c, type) and issubclass(c, BaseSkill) and c is not BaseSkill]
    return cls[0]()

def single_use(skill_dir, params):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(r)
            with os.fdopen(w, "wb") as out:
                out.write(json.dumps(load(skill_dir).execute(params)).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as inp:
        body = inp.read()
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise RuntimeError("call child failed: status %d" % status)
    return body

mode, skill_dir = sys.argv[1], sys.argv[2]
skill = None if mode == "http-fork" else load(skill_dir)

if mode == "once":
    print(json.dumps(skill.execute(json.loads(sys.argv[3])), indent=2, sort_keys=True))
elif mode == "lines":
    for line in sys.stdin:
        sys.stdout.write(json.dumps(skill.execute(json.loads(line))) + "\n")
        sys.stdout.flush()
elif mode in ("http", "http-fork"):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True
        def do_POST(self):
            params = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            if skill is None:
                body = single_use(skill_dir, params)
            else:
                body = json.dumps(skill.execute(params)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *args):
            pass
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(srv.server_address[1], flush=True)
    srv.serve_forever()
`

// Python is an interpreter and a skill for the Python modes.
type Python struct {
	// Exe is the interpreter; every Python mode and peer runs it.
	Exe string
	// Dir is the skill's folder and Params the call's JSON params.
	Dir, Params string
}

// Argv is the bare baseline: a whole python3 process running the skill
// once, in-process. -I as the skillbox harness's interpreter (no PYTHON*
// variables, no user site); site is processed, as for the skill there.
func (p Python) Argv() []string {
	return []string{p.Exe, "-I", "-B", "-c", Driver, "once", p.Dir, p.Params}
}

// Version asks the interpreter for its version ("3.11.2"; "" if it fails).
func (p Python) Version() string {
	out, err := exec.Command(p.Exe, "-I", "-c", "import sys; print(sys.version.split()[0])").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// LinesMode is the skill imported once in a python3 process and called
// over a pipe, one JSON line per call.
func (p Python) LinesMode(name string) Mode {
	return Mode{Name: name, Kind: Call, Open: func(ctx context.Context) (Caller, error) {
		cmd := exec.Command(p.Exe, "-I", "-B", "-c", Driver, "lines", p.Dir)
		ownSession(cmd)
		return startPipe(cmd, []byte(oneLine(p.Params)+"\n"), func(line []byte) (json.RawMessage, error) {
			return json.RawMessage(bytes.TrimSpace(line)), nil
		})
	}}
}

// HTTPMode is the skill imported once in a python3 HTTP server on
// loopback (Python's http.server), one POST per call over a kept-alive
// connection.
func (p Python) HTTPMode(name string) Mode {
	return Mode{Name: name, Kind: Call, Open: func(ctx context.Context) (Caller, error) {
		url, pid, stop, err := p.StartHTTP(false)
		if err != nil {
			return nil, err
		}
		return &httpCaller{url: url, params: p.Params, stop: stop, pid: pid}, nil
	}}
}

// StartHTTP starts the Driver's HTTP server for p.Dir ("http", or
// "http-fork" when fork is set: a child forked per call) and returns its
// URL, its pid and a func that stops it. Any number of clients may call
// it at once.
func (p Python) StartHTTP(fork bool) (url string, pid int, stop func() error, err error) {
	mode := "http"
	if fork {
		mode = "http-fork"
	}
	cmd := exec.Command(p.Exe, "-I", "-B", "-c", Driver, mode, p.Dir)
	ownSession(cmd)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", 0, nil, err
	}
	errb := &limitedBuffer{n: 64 << 10}
	cmd.Stderr = errb
	if err := cmd.Start(); err != nil {
		return "", 0, nil, err
	}
	stop = func() error { cmd.Process.Kill(); return cmd.Wait() }
	port, err := readLine(out, 30*time.Second)
	if err != nil {
		stop()
		return "", 0, nil, fmt.Errorf("python %s server did not start: %v %s", mode, err, clip(errb.Bytes()))
	}
	return "http://127.0.0.1:" + strings.TrimSpace(port) + "/", cmd.Process.Pid, stop, nil
}

// readLine reads the first line of r within d.
func readLine(r io.Reader, d time.Duration) (string, error) {
	type res struct {
		s   string
		err error
	}
	ch := make(chan res, 1)
	go func() {
		s, err := bufio.NewReader(r).ReadString('\n')
		ch <- res{s, err}
	}()
	select {
	case x := <-ch:
		return x.s, x.err
	case <-time.After(d):
		return "", fmt.Errorf("nothing within %s", d)
	}
}

// httpCaller POSTs the params to url over one kept-alive connection.
// When envelope is set the answer is skillbox's {"ok":…,"result":…}.
type httpCaller struct {
	url, params string
	envelope    bool
	client      http.Client
	stop        func() error
	pid         int // the server's
	// wire is the last call's time from sending the request to having
	// read the whole answer, before it is decoded.
	wire time.Duration
}

func (h *httpCaller) Pid() int { return h.pid }

// Wire is the last call's time until its answer was read, without the
// client's decoding of it (which differs between an envelope and a bare
// result).
func (h *httpCaller) Wire() time.Duration { return h.wire }

func (h *httpCaller) Call(ctx context.Context) (json.RawMessage, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, strings.NewReader(h.params))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	t0 := time.Now()
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	h.wire = time.Since(t0)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, clip(body))
	}
	if !h.envelope {
		return body, nil
	}
	var env struct {
		OK     bool            `json:"ok"`
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(body, &env); err != nil || !env.OK {
		return nil, fmt.Errorf("answer %s", clip(body))
	}
	return env.Result, nil
}

func (h *httpCaller) Close() error {
	h.client.CloseIdleConnections()
	if h.stop != nil {
		h.stop()
	}
	return nil
}

// pipeCaller writes a request line to a process's standard input per call
// and reads answer lines until parse accepts one (nil result, nil error:
// not the answer yet, such as a notification).
type pipeCaller struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	out   *bufio.Reader
	req   []byte
	parse func([]byte) (json.RawMessage, error)
	errb  *limitedBuffer
}

func startPipe(cmd *exec.Cmd, req []byte, parse func([]byte) (json.RawMessage, error)) (*pipeCaller, error) {
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	errb := &limitedBuffer{n: 64 << 10}
	cmd.Stderr = errb
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &pipeCaller{cmd: cmd, in: in, out: bufio.NewReaderSize(out, 1<<16), req: req, parse: parse, errb: errb}, nil
}

func (p *pipeCaller) Pid() int { return p.cmd.Process.Pid }

func (p *pipeCaller) Call(ctx context.Context) (json.RawMessage, error) {
	if _, err := p.in.Write(p.req); err != nil {
		return nil, fmt.Errorf("write: %v", err)
	}
	for {
		line, err := p.out.ReadBytes('\n')
		if err != nil {
			return nil, fmt.Errorf("read: %v %s", err, clip(p.errb.Bytes()))
		}
		v, err := p.parse(line)
		if err != nil || v != nil {
			return v, err
		}
	}
}

// roundTrip sends one line and returns the first answer parse accepts.
func (p *pipeCaller) roundTrip(ctx context.Context, req []byte, parse func([]byte) (json.RawMessage, error)) (json.RawMessage, error) {
	saved, savedParse := p.req, p.parse
	p.req, p.parse = req, parse
	defer func() { p.req, p.parse = saved, savedParse }()
	return p.Call(ctx)
}

func (p *pipeCaller) Close() error {
	p.in.Close()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		return <-done
	}
}

// limitedBuffer keeps the first n bytes written to it and drops the rest,
// so that a chatty process's standard error neither blocks nor grows.
type limitedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
	n  int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := l.n - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// Bytes is a copy of what was kept.
func (l *limitedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.b.Bytes())
}
