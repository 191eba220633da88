package egress

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeResolver answers from a map and never asks a real DNS server.
type fakeResolver map[string][]netip.Addr

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := f[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

var loop4 = netip.MustParseAddr("127.0.0.1")

// recorder collects audit events.
type recorder struct {
	mu  sync.Mutex
	evs []Event
}

func (r *recorder) add(e Event) {
	r.mu.Lock()
	r.evs = append(r.evs, e)
	r.mu.Unlock()
}

// wait returns the first event matching ok, waiting up to 5s for it (allowed
// exchanges are audited just after the response is sent).
func (r *recorder) wait(t testing.TB, ok func(Event) bool) Event {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		for _, e := range r.evs {
			if ok(e) {
				r.mu.Unlock()
				return e
			}
		}
		r.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	t.Fatalf("no matching audit event; have %+v", r.evs)
	return Event{}
}

func (r *recorder) all() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.evs...)
}

type harness struct {
	p    *Proxy
	addr string // proxy address
	rec  *recorder
}

// start runs a proxy for cfg on a loopback listener.
func start(t testing.TB, cfg Config) *harness {
	t.Helper()
	rec := &recorder{}
	if cfg.Audit == nil {
		cfg.Audit = rec.add
	}
	if cfg.Resolver == nil {
		cfg.Resolver = fakeResolver{}
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Serve(l) }()
	t.Cleanup(func() {
		p.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &harness{p: p, addr: l.Addr().String(), rec: rec}
}

// client returns an HTTP client using the proxy, trusting roots (nil: none
// beyond the system's).
func (h *harness) client(roots *x509.CertPool) *http.Client {
	u, _ := url.Parse("http://" + h.addr)
	return &http.Client{
		Transport: &http.Transport{
			Proxy:             http.ProxyURL(u),
			TLSClientConfig:   &tls.Config{RootCAs: roots},
			ForceAttemptHTTP2: false,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return nil },
		Timeout:       10 * time.Second,
	}
}

func (h *harness) caPool(t testing.TB) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(h.p.CACertPEM()) {
		t.Fatal("no CA PEM")
	}
	return pool
}

func serverPool(ts *httptest.Server) *x509.CertPool {
	pool := x509.NewCertPool()
	if c := ts.Certificate(); c != nil {
		pool.AddCert(c)
	}
	return pool
}

func portOf(t testing.TB, ts *httptest.Server) int {
	t.Helper()
	u, _ := url.Parse(ts.URL)
	p, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func rules(t testing.TB, ss ...string) []Rule {
	t.Helper()
	var out []Rule
	for _, s := range ss {
		r, err := ParseRule(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func get(t testing.TB, c *http.Client, u string) (int, string, http.Header) {
	t.Helper()
	res, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer res.Body.Close()
	var b strings.Builder
	if _, err := fmt.Fprint(&b, readAll(res)); err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, b.String(), res.Header
}

func readAll(res *http.Response) string {
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := res.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}
