package skillbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/skillbox-dev/skillbox/skill"
)

// maxCachedRefs bounds the resolutions kept; past it the cache starts over.
const maxCachedRefs = 4096

// maxWatches bounds the folders one Runtime watches; past it, the
// refCache starts over with a new notifier, and stops caching (calls
// resolve every time) if one resolution alone needs more, rather than
// hold more of the user's inotify watches. (refCache.maxWatches: tests
// set a smaller one.)
const maxWatches = 8192

// maxLinks bounds the symbolic links followed on one path, as the
// kernel's own limit (40) does: a path with more cannot be resolved.
const maxLinks = 40

var (
	// errWatchLimit: the notifier holds as many watches as it may.
	errWatchLimit = errors.New("too many folders to watch")
	// errUnwatchable: a folder a resolution reads cannot be watched, or
	// its path not followed; that resolution is not kept.
	errUnwatchable = errors.New("cannot watch")
)

// notifier reports changes in watched folders (inotify on Linux).
type notifier interface {
	// watch starts watching the folder dir (its entries, not below, and
	// its own removal or move) — the folder the path names now, even if
	// a folder at that path was watched before; a folder that does not
	// exist is not an error. Every method is safe for concurrent use;
	// after close, watch fails and changed is false.
	watch(dir string) error
	// watchLinks watches only entries of dir being added, removed or
	// renamed, and its own removal or move: dir holds a symbolic link a
	// resolution followed, which replacing changes what the path names;
	// writes to its other files do not matter.
	watchLinks(dir string) error
	// changed reports whether anything watched changed since the last
	// call, without blocking.
	changed() bool
	close()
}

// refCache keeps the skills that calls resolved, so that a call does not
// read the skill's folder again (the resolution, load and digest of
// skill.Resolver) while nothing in it changed. What a resolution read is
// watched before it is read — the roots, the folders an id could be found
// in, the skill's folder and everything below it, and the folders holding
// the symbolic links on the way to each of them — and any change the
// kernel reports there drops every cached resolution; so does a change
// during the resolution itself, which then is not kept. Without a
// notifier (another OS, or no inotify instance left) nothing is cached and
// every call resolves, as Runtime.Resolve does. What the kernel does not
// report (a mount over a skill's folder) the Runtime's watcher finds by
// its stat walk, and tells forget.
type refCache struct {
	mu      sync.Mutex
	n       notifier // nil: no caching (yet, until started)
	started bool     // newNotifier was called
	gen     uint64   // changes seen
	entries map[string]refEntry
	roots   []skill.Root
	resolve func(string) (*skill.Skill, error)
	// maxWatches is what each notifier may hold (maxWatches).
	maxWatches int
}

type refEntry struct {
	s   *skill.Skill
	gen uint64
}

func newRefCache(roots []skill.Root, resolve func(string) (*skill.Skill, error)) *refCache {
	return &refCache{entries: map[string]refEntry{}, roots: roots, resolve: resolve, maxWatches: maxWatches}
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
		c.n, _ = newNotifier(c.maxWatches)
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
	err := c.watchFor(n, ref)
	if errors.Is(err, errWatchLimit) {
		// The watches of folders no resolution reads any more (old
		// releases, moved folders) go with a new notifier; once.
		if n, err = c.renew(n); err == nil {
			err = c.watchFor(n, ref)
		}
	}
	if err != nil {
		// A folder that cannot be watched: this resolution is not kept.
		// Anything else (the limit again, a failing notifier): caching
		// stops.
		if !errors.Is(err, errUnwatchable) {
			c.mu.Lock()
			if c.n == n {
				c.disable()
			}
			c.mu.Unlock()
		}
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
	if c.n != n {
		return s, nil // not what watched it: closed or renewed since
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

// renew replaces the notifier old, which holds too many watches, with a
// new one and drops every resolution kept; c.mu is not held. It returns
// the notifier to watch with, or an error if there is none.
func (c *refCache) renew(old notifier) (notifier, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == old {
		old.close()
		c.n, _ = newNotifier(c.maxWatches)
		c.gen++
		clear(c.entries)
	}
	if c.n == nil {
		return nil, errors.New("no notifier")
	}
	return c.n, nil
}

// forget drops every kept resolution if one of the skill folder dir has
// another digest than digest, or any if the folder is gone: the Runtime's
// watcher found dir changed in a way the notifier does not report (a
// mount over it, or over a folder above it). Resolutions under way are not
// kept either.
func (c *refCache) forget(dir, digest string, gone bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.entries {
		if e.s.Dir == dir && (gone || e.s.Digest != digest) {
			c.gen++
			return
		}
	}
}

// watchFor watches every folder resolving ref reads: the roots, and for an
// id each root's category folder and skill folder; for a path, the folder
// and its parent; below each skill folder that exists, every folder; and
// the folders holding the symbolic links on the way to any of them. Each
// is watched as the folder its path names once the links are followed,
// so that a link replaced since an earlier resolution does not leave the
// old target watched instead.
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
		real, err := watchLinks(n, d)
		if err != nil {
			return err
		}
		if real == "" {
			continue // not there: whoever makes it changes a watched folder
		}
		if err := n.watch(real); err != nil {
			return err
		}
	}
	for _, t := range trees {
		t, err := watchLinks(n, t)
		if err != nil {
			return err
		}
		if t == "" {
			continue
		}
		err = filepath.WalkDir(t, func(p string, d fs.DirEntry, err error) error {
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

// watchLinks watches the folders holding the symbolic links on the way to
// p (linkFolders) and returns p's real path, "" if it does not exist. The
// path is followed again once they are watched: if a link changed in
// between, the new way is watched too, a few times at most.
func watchLinks(n notifier, p string) (string, error) {
	real, holders, err := linkFolders(p)
	for range 3 {
		if err != nil {
			return "", err
		}
		for _, h := range holders {
			if err := n.watchLinks(h); err != nil {
				return "", err
			}
		}
		again, holders2, err2 := linkFolders(p)
		if err2 == nil && again == real && slices.Equal(holders, holders2) {
			return real, nil
		}
		real, holders, err = again, holders2, err2
	}
	return "", fmt.Errorf("%w %s: its symbolic links keep changing", errUnwatchable, p)
}

// linkFolders follows the path p a component at a time, as the kernel
// does, and returns its real path ("" if a component does not exist) and
// the real folders holding the symbolic links met on the way, those met in
// the links' targets included: replacing any of those links changes what
// p names. Where a component after a link does not exist, the folder that
// would hold it is returned too (making it changes what p names). The
// folders on the way that are not links are not returned: a change there
// is reported by the watches of the folders below, or, for a folder above
// a root replaced by renaming, not at all.
func linkFolders(p string) (real string, holders []string, err error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", nil, fmt.Errorf("%w %s: %v", errUnwatchable, p, err)
	}
	rest := strings.Split(abs, string(filepath.Separator))
	cur, links := string(filepath.Separator), 0
	for len(rest) > 0 {
		name := rest[0]
		rest = rest[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			cur = filepath.Dir(cur)
			continue
		}
		next := filepath.Join(cur, name)
		fi, err := os.Lstat(next)
		if err != nil {
			if links > 0 {
				holders = append(holders, cur)
			}
			return "", holders, nil
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		if links++; links > maxLinks {
			return "", nil, fmt.Errorf("%w %s: more than %d symbolic links on its way", errUnwatchable, p, maxLinks)
		}
		holders = append(holders, cur)
		target, err := os.Readlink(next)
		if err != nil {
			return "", nil, fmt.Errorf("%w %s: %v", errUnwatchable, p, err)
		}
		if filepath.IsAbs(target) {
			cur = string(filepath.Separator)
		}
		rest = append(strings.Split(target, string(filepath.Separator)), rest...)
	}
	return cur, holders, nil
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
