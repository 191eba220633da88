package loadtest_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox"
	"github.com/skillbox-dev/skillbox/internal/server"
	"github.com/skillbox-dev/skillbox/internal/server/loadtest"
	"github.com/skillbox-dev/skillbox/sandbox"
	_ "github.com/skillbox-dev/skillbox/sandbox/all"
	"github.com/skillbox-dev/skillbox/skill"
)

// TestLoad is the reduced load test CI runs: 8 clients, every answer
// checked, no goroutines or descriptors left behind. The full one is
// cmd/skillbox-load.
func TestLoad(t *testing.T) {
	backend, calls := "process", 25 // a process call spawns Python: keep CI short
	if b := os.Getenv("SKILLBOX_TEST_BACKEND"); b != "" {
		backend, calls = b, 200
	}
	ctx := context.Background()
	d, err := sandbox.Choose(ctx, backend, false)
	if err != nil {
		t.Skipf("backend %s: %v", backend, err)
	}
	if c := d.Probe(ctx); !c.Available {
		t.Skipf("backend %s unavailable here: %s", backend, c.Reason)
	}
	root, err := loadtest.WriteSkills(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rt, err := skillbox.New(skillbox.WithRoots(skill.Root{Path: root, Tier: skill.TierExternal}), skillbox.WithBackend(backend))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	s, err := server.New(rt, server.Config{Call: skillbox.CallOptions{Backend: backend, TrustRemoteCode: true}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()

	// Warm up, then count what a clean run must give back.
	if rep, err := loadtest.Run(ctx, loadtest.Config{URL: hs.URL, Clients: 8, Calls: 1}); err != nil || !rep.Clean() {
		t.Fatalf("warm-up: %v %v", rep, err)
	}
	hs.CloseClientConnections()
	g0, fd0 := settle(0, 0)
	rep, err := loadtest.Run(ctx, loadtest.Config{URL: hs.URL, Clients: 8, Calls: calls})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("backend %s: %v", backend, rep)
	if !rep.Clean() {
		t.Errorf("not every call was answered once, correctly: %v (first error: %s)", rep, rep.FirstError)
	}
	hs.CloseClientConnections()
	if g, fd := settle(g0, fd0); g > g0 || fd > fd0 {
		t.Errorf("leak: goroutines %d -> %d, descriptors %d -> %d", g0, g, fd0, fd)
	}
}

// settle waits up to 5s for goroutines and descriptors to fall to the
// given counts, and returns the counts it saw last.
func settle(g0, fd0 int) (int, int) {
	var g, fd int
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		g, fd = runtime.NumGoroutine(), fds()
		if (g <= g0 && fd <= fd0) || time.Now().After(deadline) {
			return g, fd
		}
		if g0 == 0 { // first call: just let the warm-up's connections close
			time.Sleep(200 * time.Millisecond)
			return runtime.NumGoroutine(), fds()
		}
	}
}

func fds() int {
	ents, _ := os.ReadDir("/proc/self/fd")
	return len(ents)
}

// TestBare drives a server that answers with the bare result, as the
// baselines of skillbox-load -baseline do, and checks that each answer is
// matched to its own call.
func TestBare(t *testing.T) {
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(w, r.Body)
	})
	hs := httptest.NewServer(echo)
	defer hs.Close()
	rep, err := loadtest.Run(context.Background(), loadtest.Config{URL: hs.URL, Clients: 4, Calls: 10, Bare: true})
	if err != nil || !rep.Clean() {
		t.Fatalf("echo server: %v %v", rep, err)
	}

	// A server that answers every call with the same result crosses all
	// but one client's first answer.
	same := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"nonce":"c0-0"}`)
	}))
	defer same.Close()
	rep, err = loadtest.Run(context.Background(), loadtest.Config{URL: same.URL, Clients: 2, Calls: 3, Bare: true})
	if err != nil || rep.Clean() || rep.OK != 1 || rep.Crossed != 5 {
		t.Fatalf("a server answering one result to all: %v %v; want 1 ok, 5 crossed", rep, err)
	}
}
