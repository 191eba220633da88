package skillbox

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/skillbox-dev/skillbox/skill"
)

// maxCachedRefs bounds the resolutions kept; past it the cache starts over.
const maxCachedRefs = 4096

// notifier reports changes in watched folders (inotify on Linux).
type notifier interface {
	// watch starts watching the folder dir (its entries, not below); a
	// folder that does not exist is not an error. Every method is safe
	// for concurrent use; after close, watch fails and changed is false.
	watch(dir string) error
	// changed reports whether anything watched changed since the last
	// call, without blocking.
	changed() bool
	close()
}

// refCache keeps the skills that calls resolved, so that a call does not
// read the skill's folder again (the resolution, load and digest of
// skill.Resolver) while nothing in it changed. What a resolution read is
// watched before it is read — the roots, the folders an id could be found
// in, and the skill's folder and everything below it — and any change the
// kernel reports there drops every cached resolution; so does a change
// during the resolution itself, which then is not kept. Without a
// notifier (another OS, or no inotify instance left) nothing is cached and
// every call resolves, as Runtime.Resolve does.
type refCache struct {
	mu      sync.Mutex
	n       notifier // nil: no caching (yet, until started)
	started bool     // newNotifier was called
	gen     uint64   // changes seen
	entries map[string]refEntry
	roots   []skill.Root
	resolve func(string) (*skill.Skill, error)
}

type refEntry struct {
	s   *skill.Skill
	gen uint64
}

func newRefCache(roots []skill.Root, resolve func(string) (*skill.Skill, error)) *refCache {
	return &refCache{entries: map[string]refEntry{}, roots: roots, resolve: resolve}
}

// poll notes changes reported since the last poll; c.mu is held.
func (c *refCache) poll() {
	if c.n != nil && c.n.changed() {
		c.gen++
	}
}

// get returns the skill ref names: the cached resolution when nothing it
// read has changed, else a new one.
func (c *refCache) get(ref string) (*skill.Skill, error) {
	c.mu.Lock()
	if !c.started {
		// On first use: a Runtime that makes one call (the CLI's run)
		// never asks, and holds no inotify instance.
		c.started = true
		c.n, _ = newNotifier()
	}
	if c.n == nil {
		c.mu.Unlock()
		return c.resolve(ref)
	}
	c.poll()
	if e, ok := c.entries[ref]; ok && e.gen == c.gen {
		c.mu.Unlock()
		return e.s, nil
	}
	n := c.n // watched outside c.mu: the notifier guards itself
	c.mu.Unlock()

	// Watch first, then read: a change after this point is reported.
	if err := c.watchFor(n, ref); err != nil {
		c.mu.Lock()
		c.disable()
		c.mu.Unlock()
		return c.resolve(ref)
	}
	c.mu.Lock()
	c.poll()
	gen := c.gen
	c.mu.Unlock()
	s, err := c.resolve(ref)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		return s, nil
	}
	c.poll()
	if c.gen == gen {
		if len(c.entries) >= maxCachedRefs {
			clear(c.entries)
		}
		c.entries[ref] = refEntry{s: s, gen: gen}
	}
	return s, nil
}

// watchFor watches every folder resolving ref reads: the roots, and for an
// id each root's category folder and skill folder; for a path, the folder
// and its parent; and below each skill folder that exists, every folder.
func (c *refCache) watchFor(n notifier, ref string) error {
	var dirs, trees []string
	if skill.ValidID(ref) {
		cat, _, _ := strings.Cut(ref, "/")
		for _, r := range c.roots {
			dirs = append(dirs, r.Path, filepath.Join(r.Path, cat))
			trees = append(trees, filepath.Join(r.Path, filepath.FromSlash(ref)))
		}
	}
	if abs, err := filepath.Abs(expandHome(ref)); err == nil {
		dirs = append(dirs, filepath.Dir(abs))
		trees = append(trees, abs)
	}
	for _, d := range dirs {
		if err := n.watch(d); err != nil {
			return err
		}
	}
	for _, t := range trees {
		if real, err := filepath.EvalSymlinks(t); err == nil {
			t = real
		}
		err := filepath.WalkDir(t, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil // gone or unreadable: its parent's watch reports it
			}
			if p != t && !d.IsDir() {
				return nil
			}
			return n.watch(p)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// expandHome is ref with a leading "~/" replaced by the home folder, as
// the resolver reads it.
func expandHome(ref string) string {
	if ref != "~" && !strings.HasPrefix(ref, "~/") {
		return ref
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ref
	}
	return filepath.Join(home, strings.TrimPrefix(ref, "~"))
}

// disable stops caching for good (the notifier failed); c.mu is held.
func (c *refCache) disable() {
	if c.n != nil {
		c.n.close()
		c.n = nil
	}
	clear(c.entries)
}

func (c *refCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.started = true // no notifier after Close
	c.disable()
}
