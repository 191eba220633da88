package trust

import (
	"errors"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"

	"github.com/skillbox-dev/skillbox/policy"
	"github.com/skillbox-dev/skillbox/skill"
)

// Gate is the trust store as the policy.Trust of a long-lived Runtime
// (serve): every decision sees the store as the file is now. A stat of the
// file per decision tells whether it changed (another inode after the atomic
// rename of Save, or another size, mode, mtime or ctime after an edit in
// place); only then is it read again. A store that cannot be read or parsed
// after a change denies every external skill with its error: the grants read
// before are not kept.
type Gate struct {
	path string
	mu   sync.Mutex // held while the store is read again
	cur  atomic.Pointer[gateState]
}

// gateState is one reading of the store: the file's stamp when it was read
// and the store it held, or why it could not be read.
type gateState struct {
	stamp stamp
	trust policy.Trust
}

// NewGate returns a Gate over the store at path (see Open: a missing file, or
// path "", is an empty store). Nothing is read until the first decision.
func NewGate(path string) *Gate { return &Gate{path: path} }

// Snapshot implements policy.TrustSnapshot: the store as the file is now,
// read again if it changed since the last decision.
func (g *Gate) Snapshot() policy.Trust {
	st, ok := stampOf(g.path)
	if cur := g.cur.Load(); ok && cur != nil && cur.stamp == st {
		return cur.trust
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	// Another decision may have read it meanwhile.
	if cur := g.cur.Load(); ok && cur != nil && cur.stamp == st {
		return cur.trust
	}
	// Stamped before the read: a change made while it reads gives another
	// stamp, and the next decision reads it again.
	var t policy.Trust
	s, err := Open(g.path)
	if err != nil {
		t = brokenGate{err}
	} else {
		t = s
	}
	if ok {
		g.cur.Store(&gateState{stamp: st, trust: t})
	}
	return t
}

// Trusted implements policy.Trust on the current store.
func (g *Gate) Trusted(sk *skill.Skill) (string, error) { return g.Snapshot().Trusted(sk) }

// TrustedImage implements policy.ImagePins on the current store.
func (g *Gate) TrustedImage(sk *skill.Skill) (string, bool) {
	if p, ok := g.Snapshot().(policy.ImagePins); ok {
		return p.TrustedImage(sk)
	}
	return "", false
}

// TrustedEnvironment implements policy.EnvironmentPins on the current store.
func (g *Gate) TrustedEnvironment(sk *skill.Skill) ([]string, bool) {
	if p, ok := g.Snapshot().(policy.EnvironmentPins); ok {
		return p.TrustedEnvironment(sk)
	}
	return nil, false
}

// brokenGate is a store that could not be read: it trusts nothing and says
// why.
type brokenGate struct{ err error }

func (b brokenGate) Trusted(*skill.Skill) (string, error) { return "", b.err }

// stamp identifies one version of the store file.
type stamp struct {
	// state is "absent", "file", or the error of the stat.
	state        string
	dev, ino     uint64
	mode         fs.FileMode
	size         int64
	mtime, ctime int64
}

// stampOf stamps the file at path (following a final symlink, as Open
// does); ok is false on a platform where a file's version cannot be told
// (no inode or ctime), and the store is then read on every decision.
func stampOf(path string) (st stamp, ok bool) {
	if path == "" {
		return stamp{state: "absent"}, true
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return stamp{state: "absent"}, true
	case err != nil:
		return stamp{state: err.Error()}, true
	}
	st = stamp{state: "file", mode: fi.Mode(), size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	st.dev, st.ino, st.ctime, ok = statIdentity(fi)
	return st, ok
}
