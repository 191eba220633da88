package skillbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox"
	"github.com/skillbox-dev/skillbox/audit"
	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/lockfile"
)

// A locked call takes the limits the lockfile pinned where the caller
// gives none: a skill locked at a 5s timeout and 128 MiB ('skillbox lock
// --timeout 5s --memory 128MiB') runs with them, not the manifest's
// defaults (which the lock check would refuse as wider than the lock).
// This is the Runtime's, so every caller of a locked Runtime (run and
// serve --locked) gets it. A limit the caller gives wins, and one longer
// than the lock's is refused as drift, as before.
func TestLockedCallTakesTheLockedLimits(t *testing.T) {
	d := lockDriver
	var log bytes.Buffer
	var logMu sync.Mutex
	// Values are looked up once a call: one policy decision, not one
	// more to apply the locked limits (a secrets provider may be slow).
	var lookups atomic.Int64
	lookup := func(name string) (string, bool) {
		if name == "LIFE_TOKEN" {
			lookups.Add(1)
			return "t", true
		}
		return "", false
	}
	rt, _ := lifecycleRuntime(t, skillbox.WithAudit(audit.New(lockedWriter{&logMu, &log})), skillbox.WithLookupEnv(lookup))
	s, err := rt.Resolve("test/life")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "skills.lock")
	lf := lockfile.New(path)
	lf.Set(s.ID, lockfile.Entry{Version: s.Bundle.Manifest.Version, Digest: s.Digest, Tier: string(s.Tier),
		Grants: lockfile.Grants{Env: []string{"LIFE_TOKEN"}, Timeout: "5s", Memory: 128 << 20}})
	if err := lf.Save(); err != nil {
		t.Fatal(err)
	}
	lock, err := skillbox.LoadLock(path)
	if err != nil {
		t.Fatal(err)
	}
	lastGrants := func() *audit.Grants {
		t.Helper()
		logMu.Lock()
		defer logMu.Unlock()
		lines := strings.Split(strings.TrimSpace(log.String()), "\n")
		var r audit.Record
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &r); err != nil || r.Grants == nil {
			t.Fatalf("last audit record: %v %s", err, lines[len(lines)-1])
		}
		return r.Grants
	}

	base := len(d.opened())
	env := []string{"LIFE_TOKEN"}
	if _, err := rt.Call(context.Background(), "test/life", nil, skillbox.CallOptions{Backend: d.name, Lock: lock, AllowEnv: env, GrantUndeclared: true}); err != nil {
		t.Fatalf("locked call without limits: %v", err)
	}
	if n := lookups.Load(); n != 1 {
		t.Errorf("the locked call looked its variable up %d times, want once (one policy decision)", n)
	}
	boxes := d.opened()
	if len(boxes) != base+1 {
		t.Fatalf("%d sandboxes opened, want 1", len(boxes)-base)
	}
	if l := boxes[base].spec.Limits; l.Timeout != 5*time.Second || l.Memory != 128<<20 {
		t.Errorf("locked call ran with timeout %v memory %d, want the locked 5s and 128 MiB", l.Timeout, l.Memory)
	}
	if g := lastGrants(); g.Timeout != "5s" || g.Memory != 128<<20 {
		t.Errorf("audit record of the locked call: timeout %q memory %d, want 5s and 128 MiB", g.Timeout, g.Memory)
	}

	// A shorter limit given by the caller wins.
	if _, err := rt.Call(context.Background(), "test/life", nil, skillbox.CallOptions{Backend: d.name, Lock: lock, AllowEnv: env, GrantUndeclared: true, Timeout: 2 * time.Second}); err != nil {
		t.Fatalf("locked call with a shorter timeout: %v", err)
	}
	if g := lastGrants(); g.Timeout != "2s" || g.Memory != 128<<20 {
		t.Errorf("audit record of the call with --timeout 2s: timeout %q memory %d, want 2s and the locked 128 MiB", g.Timeout, g.Memory)
	}

	// A longer one is drift, refused as before (denied, exit 3 in the CLI).
	for _, c := range []struct {
		name string
		opts skillbox.CallOptions
		want string
	}{
		{"timeout", skillbox.CallOptions{Timeout: 10 * time.Second}, "--timeout 5s or less"},
		{"memory", skillbox.CallOptions{Memory: 256 << 20}, "--memory 128MiB or less"},
	} {
		c.opts.Backend, c.opts.Lock, c.opts.AllowEnv, c.opts.GrantUndeclared = d.name, lock, env, true
		n := len(d.opened())
		_, err := rt.Call(context.Background(), "test/life", nil, c.opts)
		if errdefs.KindOf(err) != errdefs.Denied || !strings.Contains(err.Error(), c.want) {
			t.Errorf("locked call with a %s above the lock's: %v (kind %s), want denied naming %q", c.name, err, errdefs.KindOf(err), c.want)
		}
		if len(d.opened()) != n {
			t.Errorf("the refused %s call opened a sandbox", c.name)
		}
	}
}
