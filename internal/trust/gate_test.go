package trust

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/policy"
)

var _ policy.TrustSnapshot = (*Gate)(nil)
var _ policy.ImagePins = (*Gate)(nil)
var _ policy.EnvironmentPins = (*Gate)(nil)

// TestGateFollowsTheStore: a Gate sees each change Update makes from the
// next decision (untrust revokes, trust grants), keeps one reading while the
// file is unchanged, and denies with the store's error once the file is
// broken, rather than keep what it read before.
func TestGateFollowsTheStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cfg", "trust.json")
	s := bundle(t)
	g := NewGate(path)
	if _, err := g.Trusted(s); !errors.Is(err, policy.ErrNotTrusted) {
		t.Fatalf("no store file: %v; want not trusted", err)
	}
	update := func(fn func(*Store) error) {
		t.Helper()
		if err := Update(path, fn); err != nil {
			t.Fatal(err)
		}
	}
	update(func(st *Store) error { _, err := st.Trust(s, time.Now()); return err })
	if _, err := g.Trusted(s); err != nil {
		t.Fatalf("after trust: %v", err)
	}
	if a, b := g.Snapshot(), g.Snapshot(); a != b {
		t.Error("an unchanged store was read again")
	}
	update(func(st *Store) error { st.Remove(s.ID); return nil })
	if _, err := g.Trusted(s); !errors.Is(err, policy.ErrNotTrusted) {
		t.Fatalf("after untrust: %v; want not trusted", err)
	}
	update(func(st *Store) error { _, err := st.Trust(s, time.Now()); return err })
	if _, err := g.Trusted(s); err != nil {
		t.Fatalf("after trusting again: %v", err)
	}

	// Broken in place (the same inode): denied with the store's error.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("{\"version\": 1,\n")
	f.Close()
	_, err = g.Trusted(s)
	if errdefs.KindOf(err) != errdefs.Invalid || !strings.Contains(err.Error(), "nothing in it is trusted") {
		t.Fatalf("broken store: %v; want invalid, nothing trusted", err)
	}
	if _, ok := g.TrustedImage(s); ok {
		t.Error("a broken store pins an image")
	}
	// Other users may write it: denied too.
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Trusted(s); err != nil {
		t.Fatalf("repaired store: %v", err)
	}
	os.Chmod(path, 0o666)
	if _, err := g.Trusted(s); err == nil || !strings.Contains(err.Error(), "other users may write it") {
		t.Fatalf("world-writable store: %v", err)
	}
	// Removed: an empty store.
	os.Remove(path)
	if _, err := g.Trusted(s); !errors.Is(err, policy.ErrNotTrusted) {
		t.Fatalf("removed store: %v; want not trusted", err)
	}
}

// TestGateConcurrentDecisions: decisions made while the store is trusted and
// untrusted over and over each see one whole store (trusted or not, never a
// read error), and the last change wins.
func TestGateConcurrentDecisions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trust.json")
	s := bundle(t)
	g := NewGate(path)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := g.Trusted(s); err != nil && !errors.Is(err, policy.ErrNotTrusted) {
					errs <- err
					return
				}
			}
		})
	}
	for i := range 50 {
		err := Update(path, func(st *Store) error {
			if i%2 == 0 {
				_, err := st.Trust(s, time.Now())
				return err
			}
			st.Remove(s.ID)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("decision during changes: %v", err)
	}
	// The last change (i = 49) untrusted it.
	if _, err := g.Trusted(s); !errors.Is(err, policy.ErrNotTrusted) {
		t.Errorf("after the last untrust: %v", err)
	}
}
