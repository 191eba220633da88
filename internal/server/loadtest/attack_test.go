package loadtest_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox"
	"github.com/skillbox-dev/skillbox/internal/server"
	"github.com/skillbox-dev/skillbox/internal/server/loadtest"
	"github.com/skillbox-dev/skillbox/skill"
)

// TestServerAttacks runs both attacks, small, against a server while a normal
// client calls: batches are refused with 400, trickled bodies with 429
// (the body budget) or 408 (too slow), and every normal call is answered.
// The batches are small enough (under 64KiB) that the body budget, which
// keeps a quarter for small bodies, never refuses them.
// cmd/skillbox-load -attack runs them full size and measures memory.
func TestServerAttacks(t *testing.T) {
	root, err := loadtest.WriteSkills(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rt, err := skillbox.New(skillbox.WithRoots(skill.Root{Path: root, Tier: skill.TierExternal}), skillbox.WithBackend("process"))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	s, err := server.New(rt, server.Config{
		Call:          skillbox.CallOptions{Backend: "process", TrustRemoteCode: true},
		MaxBodyBytes:  256 << 10,
		MaxBodyMemory: 1 << 20,
		// Generous: the trickle below (16KiB/s) is cut by the 64KiB/s rate
		// after this grace, not by a pause.
		BodyReadTimeout: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	batch := make(chan *loadtest.AttackReport, 1)
	go func() {
		rep, err := loadtest.BatchAttack(ctx, hs.URL, "", 1, 200)
		if err != nil {
			t.Errorf("batch attack: %v", err)
		}
		batch <- rep
	}()
	trickle := make(chan *loadtest.AttackReport, 1)
	go func() { trickle <- loadtest.TrickleAttack(ctx, hs.Listener.Addr().String(), "", 12, 200<<10, 16<<10) }()
	rep, err := loadtest.Run(context.Background(), loadtest.Config{URL: hs.URL, Clients: 2, Calls: 3})
	if err != nil || !rep.Clean() {
		t.Errorf("normal calls during the attacks: %v %v (first error %s)", rep, err, rep.FirstError)
	}
	b, tr := <-batch, <-trickle
	t.Logf("batch: %v\ntrickle: %v", b, tr)
	if b.Requests == 0 || b.Status[400] == 0 || b.Status[400]+b.Cut != b.Requests {
		t.Errorf("batches: %v; want every one refused with 400", b)
	}
	// A refused client that keeps sending may see its connection reset
	// before it reads the answer (the server closes with its body unread):
	// cut, not answered otherwise.
	if tr.Status[429] == 0 || tr.Status[408] == 0 || tr.Status[408]+tr.Status[429]+tr.Cut != tr.Requests {
		t.Errorf("trickled bodies: %v; want only 408 and 429 answers, some of each", tr)
	}
}
