package sandboxtest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/audit"
	"github.com/skillbox-dev/skillbox/internal/egress"
)

// NetSkill is the body of a skill's execute (indented 8 spaces, for a
// bundle of the caller's; it uses os) that runs the network operations in
// params["ops"] and reports each outcome (NetResult): "get" (url, headers,
// cafile: urllib, through the proxy the variables name), "tcp" (host,
// port, proto: a direct connection), "udp", "dns", and "view" (the
// environment, config, some /proc files and the CA bundle SSL_CERT_FILE
// names, and whether it is writable). The egress tests of the backends
// with network grants share it.
const NetSkill = `        import socket, ssl, urllib.request, urllib.error
        out = []
        for op in params["ops"]:
            r = {"op": op["op"]}
            try:
                if op["op"] == "get":
                    ctx = ssl.create_default_context(cafile=op.get("cafile"))
                    req = urllib.request.Request(op["url"], headers=op.get("headers", {}))
                    try:
                        with urllib.request.urlopen(req, context=ctx, timeout=10) as res:
                            r["status"], r["body"] = res.status, res.read().decode()
                    except urllib.error.HTTPError as e:
                        r["status"], r["body"] = e.code, e.read().decode()
                elif op["op"] == "tcp":
                    fam = socket.AF_INET6 if ":" in op["host"] else socket.AF_INET
                    s = socket.socket(fam, socket.SOCK_STREAM, op.get("proto", 0))
                    s.settimeout(2)
                    try:
                        s.connect((op["host"], op["port"]))
                        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
                        r["status"] = "connected"
                    finally:
                        s.close()
                elif op["op"] == "udp":
                    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    s.settimeout(1)
                    try:
                        s.sendto(b"ping", (op["host"], op["port"]))
                        r["body"] = s.recv(100).decode()
                        r["status"] = "answered"
                    finally:
                        s.close()
                elif op["op"] == "dns":
                    r["body"] = str(socket.getaddrinfo(op["name"], 80))
                    r["status"] = "resolved"
                elif op["op"] == "view":
                    env = dict(os.environ)
                    r["env"] = env
                    r["config"] = dict(self.config)
                    files = {}
                    for p in ("/proc/self/environ", "/proc/1/environ", "/proc/1/cmdline"):
                        try:
                            files[p] = open(p, "rb").read().decode("latin-1")
                        except OSError as e:
                            files[p] = "ERR " + str(e)
                    r["files"] = files
                    ca = env.get("SSL_CERT_FILE")
                    if ca:
                        r["ca"] = open(ca).read()
                        try:
                            open(ca, "a").close()
                            r["ca_writable"] = True
                        except OSError:
                            r["ca_writable"] = False
            except Exception as e:
                r["err"] = "%s: %s" % (type(e).__name__, e)
            out.append(r)
        return {"out": out}`

// NetResult is one operation's outcome in NetSkill's result.
type NetResult struct {
	Op         string            `json:"op"`
	Status     any               `json:"status"`
	Body       string            `json:"body"`
	Err        string            `json:"err"`
	Env        map[string]string `json:"env"`
	Config     map[string]string `json:"config"`
	Files      map[string]string `json:"files"`
	CA         string            `json:"ca"`
	CAWritable bool              `json:"ca_writable"`
}

// EgressLog collects the egress proxy's events of calls (Ctx is a
// context whose audit sink it is), as the audit log records them.
type EgressLog struct {
	mu  sync.Mutex
	evs []audit.Egress
}

func (a *EgressLog) add(e egress.Event) {
	a.mu.Lock()
	a.evs = append(a.evs, e.Egress)
	a.mu.Unlock()
}

// Wait returns the first event matching ok, waiting a little (allowed
// exchanges are reported just after they end).
func (a *EgressLog) Wait(t *testing.T, what string, ok func(audit.Egress) bool) audit.Egress {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		a.mu.Lock()
		for _, e := range a.evs {
			if ok(e) {
				a.mu.Unlock()
				return e
			}
		}
		a.mu.Unlock()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	t.Fatalf("no audit event for %s; have %+v", what, a.evs)
	return audit.Egress{}
}

// Ctx is a context whose egress audit sink is a.
func (a *EgressLog) Ctx() context.Context { return egress.WithAudit(context.Background(), a.add) }

// Events returns the events collected so far.
func (a *EgressLog) Events() []audit.Egress {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]audit.Egress(nil), a.evs...)
}
