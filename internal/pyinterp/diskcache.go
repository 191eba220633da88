package pyinterp

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"hash"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/skillbox-dev/skillbox/internal/atomicfile"
	"github.com/skillbox-dev/skillbox/internal/userdir"
)

// NoCacheEnvVar names the variable that turns the persistent cache off:
// set (to anything but "" or "0"), Resolve neither reads nor writes it.
const NoCacheEnvVar = "SKILLBOX_NO_INTERP_CACHE"

const (
	cacheFormat     = "skillbox-pyinterp-cache/3"
	cacheFileName   = "pyinterp.json"
	cacheMaxEntries = 16
	cacheMaxBytes   = 1 << 20
)

// tuning is how the disk cache treats time; Resolve uses defaultTuning,
// and the cache's tests pass their own.
type tuning struct {
	// racyWindow: a file whose ctime is this close before a resolution
	// started, or later, may change again within the same timestamp tick
	// without its identity changing, so such a resolution is not stored
	// (git's "racily clean" rule).
	racyWindow time.Duration
	// timeResolution truncates the times fileID reports, in ns (a file
	// system with coarse timestamps has a larger one).
	timeResolution int64
}

var defaultTuning = tuning{racyWindow: 2 * time.Second, timeResolution: 1}

// cachePath is the persistent cache file, or "" when the cache is off.
func cachePath() string {
	if v := os.Getenv(NoCacheEnvVar); v != "" && v != "0" {
		return ""
	}
	if !statSupported {
		return ""
	}
	base, err := userdir.Cache(os.Getenv) // never a relative folder
	if err != nil {
		return ""
	}
	return filepath.Join(base, cacheFileName)
}

// fileStat is what fileID reports about a path.
type fileStat struct {
	id           string
	dir, regular bool
	ctime        int64 // ns; 0 when absent
}

// keyBuilder hashes the facts an answer depends on into a cache key.
type keyBuilder struct {
	res     int64 // tuning.timeResolution
	h       hash.Hash
	newest  int64  // the latest ctime seen, ns
	bad     string // why this answer cannot be cached; "" if it can
	entries int
}

func newKeyBuilder(res int64) *keyBuilder {
	k := &keyBuilder{h: sha256.New(), res: res}
	sum := sha256.Sum256([]byte(probe))
	k.line(cacheFormat, "probe", hex.EncodeToString(sum[:]), "env", childPATH)
	return k
}

func (k *keyBuilder) line(fields ...string) {
	for _, f := range fields {
		io.WriteString(k.h, strconv.Quote(f))
		k.h.Write([]byte{' '})
	}
	k.h.Write([]byte{'\n'})
}

func (k *keyBuilder) record(path string, follow bool) fileStat {
	st := fileID(path, follow, k.res)
	k.newest = max(k.newest, st.ctime)
	k.line("stat", path, strconv.FormatBool(follow), st.id)
	return st
}

func (k *keyBuilder) stat(path string) fileStat  { return k.record(path, true) }
func (k *keyBuilder) lstat(path string) fileStat { return k.record(path, false) }

func (k *keyBuilder) fail(why string) {
	if k.bad == "" {
		k.bad = why
	}
}

// sum is the key, or "" when the answer cannot be cached.
func (k *keyBuilder) sum() string {
	if k.bad != "" {
		return ""
	}
	return hex.EncodeToString(k.h.Sum(nil))
}

// lookupKey identifies what resolving name, found on PATH as path, depends
// on before the interpreter is run: the name, the path, the file there
// (the link and its target) and, for a pyenv shim, pyenv's inputs
// (pyenvKey). A script that is not a pyenv shim could run anything and is
// not cached (key ""). newest is the latest ctime among the files. direct
// is the absolute path when it is not a shim: Python must then report
// having been started as exactly that (see cacheStore).
func lookupKey(name, path string, res int64) (key string, newest int64, direct string) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", 0, ""
	}
	k := newKeyBuilder(res)
	k.line("name", name, "path", abs)
	k.lstat(abs)
	if st := k.stat(abs); !st.regular {
		return "", 0, ""
	}
	head, err := readHead(abs, 4096)
	if err != nil {
		return "", 0, ""
	}
	direct = abs
	if bytes.HasPrefix(head, []byte("#!")) {
		sh, ok := parseShim(string(head))
		if !ok {
			return "", 0, ""
		}
		pyenvKey(k, sh)
		direct = ""
	}
	return k.sum(), k.newest, direct
}

// readHead reads up to n bytes of path.
func readHead(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, int64(n)))
}

// cacheFile is the persistent cache: the newest entry first.
type cacheFile struct {
	Format  string       `json:"format"`
	Entries []cacheEntry `json:"entries"`
}

// cacheEntry is one resolution: the key of what led to the interpreter
// and the files its facts come from, each with the identity it had.
type cacheEntry struct {
	Key    string      `json:"key"`
	Interp Interpreter `json:"interp"`
	Deps   []cacheDep  `json:"deps"`
}

type cacheDep struct {
	Path   string `json:"path"`
	Follow bool   `json:"follow,omitempty"`
	// Site marks a site directory, identified by siteID: packages come
	// and go there without changing the interpreter's facts.
	Site bool   `json:"site,omitempty"`
	ID   string `json:"id"`
}

// id is d's identity now.
func (d cacheDep) id(res int64) fileStat {
	if d.Site {
		return siteID(d.Path, res)
	}
	return fileID(d.Path, d.Follow, res)
}

// siteID identifies a site directory by what decides sys.path: the folder
// itself (device, inode, mode, owner) and the names of the .pth and
// sitecustomize files in it (each also a dependency of its own, by
// content), not its mtime, which every package installed there changes.
// What is not a folder is identified by fileID.
func siteID(path string, res int64) fileStat {
	st := fileID(path, true, res)
	if !st.dir {
		return st
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return fileStat{id: "error " + err.Error()}
	}
	f := strings.Fields(st.id) // dev ino mode uid size mtime ctime
	id := "site " + strings.Join(f[:4], " ")
	for _, e := range entries { // sorted by name
		if startsSite(e.Name()) {
			id += " " + strconv.Quote(e.Name())
		}
	}
	return fileStat{id: id, dir: true, ctime: st.ctime}
}

// startsSite reports whether a file of this name in a site directory is
// run or read by site at start: a .pth file or sitecustomize.
func startsSite(name string) bool {
	return strings.HasSuffix(name, ".pth") || strings.HasPrefix(name, "sitecustomize")
}

// readCache returns the cache at path; a missing, unreadable, foreign
// (not the user's own, or writable by others), oversized or malformed file
// reads as empty, and the next store replaces it.
func readCache(path string) cacheFile {
	f, err := os.Open(path)
	if err != nil {
		return cacheFile{}
	}
	defer f.Close()
	if !ownedPrivately(f) {
		return cacheFile{}
	}
	b, err := io.ReadAll(io.LimitReader(f, cacheMaxBytes+1))
	if err != nil || len(b) > cacheMaxBytes {
		return cacheFile{}
	}
	var c cacheFile
	if json.Unmarshal(b, &c) != nil || c.Format != cacheFormat {
		return cacheFile{}
	}
	return c
}

// cacheLookup returns the interpreter stored under key if every file it was
// derived from is still the version it was then.
func cacheLookup(path, key string, res int64) *Interpreter {
	c := readCache(path)
	for _, e := range c.Entries {
		if e.Key != key {
			continue
		}
		if !e.valid(res) {
			return nil
		}
		in := e.Interp
		in.Paths = slices.Clone(in.Paths)
		in.Loader, in.Libs = linkage(in.Executable)
		return &in
	}
	return nil
}

// valid checks an entry against the file system: its interpreter is well
// formed, every path it names is among its dependencies, and every
// dependency still has the identity recorded.
func (e *cacheEntry) valid(res int64) bool {
	in := &e.Interp
	if in.Version == "" || !filepath.IsAbs(in.Executable) || !filepath.IsAbs(in.Command) {
		return false
	}
	followed := map[string]bool{}
	for _, d := range e.Deps {
		if !filepath.IsAbs(d.Path) || d.id(res).id != d.ID {
			return false
		}
		if d.Follow {
			followed[d.Path] = true
		}
	}
	for _, p := range append([]string{in.Executable, in.Command, in.Prefix, in.BasePrefix}, in.Paths...) {
		if p != "" && !followed[p] {
			return false
		}
	}
	return true
}

// probeResult is the probe's output: the Interpreter and what it was
// derived from.
type probeResult struct {
	Interpreter
	// Invoked is sys.executable as the interpreter saw it (the path it
	// was started by, symlinks kept): a venv is found next to it.
	Invoked string `json:"invoked"`
	// Watch are sys.path and site.getsitepackages(), existing or not: a
	// site directory that appears joins sys.path.
	Watch []string `json:"watch"`
	// Sites are site.getsitepackages(), as reported and resolved.
	Sites []string `json:"sites"`
}

// factsDeps lists the files an interpreter's facts come from: how it was
// invoked (the link and its target), its real executable, the landmarks
// Python's start looks for beside either (pyvenv.cfg there or one level
// up, pybuilddir.txt, a ._pth file), its prefixes, every sys.path and site
// directory (whether or not it exists) and the .pth and sitecustomize
// files in them, whose edits change sys.path. A folder's identity changes
// when an entry is added, removed or renamed, except a site directory's,
// which changes only with its .pth and sitecustomize names (siteID). The
// folders holding the executables are not dependencies: any install puts
// programs in /usr/bin, and only the landmarks there change the facts.
func factsDeps(r *probeResult, res int64) ([]cacheDep, int64, bool) {
	if !filepath.IsAbs(r.Invoked) {
		return nil, 0, false
	}
	var deps []cacheDep
	var newest int64
	sites := map[string]bool{}
	for _, p := range r.Sites {
		sites[filepath.Clean(p)] = true
	}
	seen := map[cacheDep]bool{}
	add := func(p string, follow bool) {
		d := cacheDep{Path: filepath.Clean(p), Follow: follow}
		d.Site = follow && sites[d.Path]
		if seen[d] {
			return
		}
		seen[d] = true
		st := d.id(res)
		d.ID, newest = st.id, max(newest, st.ctime)
		deps = append(deps, d)
	}
	landmarks := func(exe string) {
		dir := filepath.Dir(exe)
		add(filepath.Join(dir, "pyvenv.cfg"), true)
		add(filepath.Join(filepath.Dir(dir), "pyvenv.cfg"), true)
		add(filepath.Join(dir, "pybuilddir.txt"), true)
		add(strings.TrimSuffix(exe, filepath.Ext(exe))+"._pth", true)
	}
	in := &r.Interpreter
	add(r.Invoked, false)
	add(r.Invoked, true)
	landmarks(r.Invoked)
	add(in.Executable, true)
	landmarks(in.Executable)
	for _, p := range append([]string{in.Prefix, in.BasePrefix}, in.Paths...) {
		if !filepath.IsAbs(p) || p != filepath.Clean(p) {
			return nil, 0, false
		}
		add(p, true)
	}
	for _, p := range r.Watch {
		if !filepath.IsAbs(p) {
			return nil, 0, false
		}
		add(p, true)
	}
	for _, p := range in.Paths {
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, 0, false
		}
		for _, e := range entries {
			if n := e.Name(); startsSite(n) {
				add(filepath.Join(p, n), true)
			}
		}
	}
	return deps, newest, true
}

// cacheStore records r under key unless a file involved changed too
// recently (after racyFrom) for its identity to be trusted, or, when direct
// is set, the interpreter was not started as direct: a binary launcher
// (a version manager's compiled shim) chose another interpreter by rules
// the key does not know; only a pyenv shim may stand between the name and
// the interpreter.
// Failures are ignored: the cache only saves time.
func cacheStore(path, key, direct string, r *probeResult, racyFrom time.Time, keyNewest, res int64) {
	if direct != "" && filepath.Clean(r.Invoked) != direct {
		return
	}
	deps, newest, ok := factsDeps(r, res)
	if !ok || max(newest, keyNewest) >= racyFrom.UnixNano() {
		return
	}
	in := r.Interpreter
	in.Command = command(r)
	in.Loader, in.Libs = "", nil
	c := readCache(path)
	entries := []cacheEntry{{Key: key, Interp: in, Deps: deps}}
	for _, e := range c.Entries {
		if e.Key != key && len(entries) < cacheMaxEntries {
			entries = append(entries, e)
		}
	}
	b, err := json.Marshal(cacheFile{Format: cacheFormat, Entries: entries})
	if err != nil || len(b) > cacheMaxBytes {
		return
	}
	_ = atomicfile.WriteFile(path, b, 0o600)
}
