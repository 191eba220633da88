package skillenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/filelock"
	"github.com/skillbox-dev/skillbox/skill"
)

// metaFile is the record of a built environment, inside it.
const metaFile = "skillbox-env.json"

// Env is a built environment.
type Env struct {
	Key string `json:"key"`
	// Dir is the environment's folder (a virtual environment) and Python
	// its interpreter (Dir/bin/python). An environment for a Target has
	// no interpreter: its packages are in Dir/Site.
	Dir    string `json:"dir"`
	Python string `json:"python,omitempty"`
	// Base is the interpreter it was made from.
	Base string `json:"base"`
	// Requirements are the normalised requirements it was built from, and
	// Resolved what pip installed for them.
	Requirements []string  `json:"requirements"`
	Resolved     []Package `json:"resolved"`
	Index        Index     `json:"index"`
	Sdists       bool      `json:"sdists,omitempty"`
	// Pinned is the recorded set it was installed from (Request.Pinned),
	// when it was.
	Pinned []string `json:"pinned,omitempty"`
	// Target is the interpreter it was built for (Request.Target), when
	// not Base.
	Target *Target   `json:"target,omitempty"`
	Built  time.Time `json:"built"`
}

// RunsOn names the interpreter e is for: Base, or the Target's name and
// Python version ("Pyodide 0.28.0 (Python 3.13.2)").
func (e *Env) RunsOn() string {
	if e.Target != nil {
		return e.Target.Name + " (Python " + e.Target.PythonVersion + ")"
	}
	return e.Base
}

// Cache is the folder of built environments (the cache folder's "envs"):
// one folder per key, built once and then only read. Builds of one key are
// serialised across processes by a lock file beside the folder.
type Cache struct {
	Dir     string
	Builder Builder
	Bounds  Bounds
	// PipWheel is pip's wheel; empty means PipWheel().
	PipWheel string
}

// path is the folder of the environment with key.
func (c *Cache) path(key string) string { return filepath.Join(c.Dir, dirName(key)) }

// Lookup returns the built environment of req, or nil when there is none.
func (c *Cache) Lookup(req Request) (*Env, error) {
	key, err := req.Key()
	if err != nil {
		return nil, err
	}
	return c.read(key)
}

// read returns the environment with key, nil if it is not built.
func (c *Cache) read(key string) (*Env, error) {
	data, err := os.ReadFile(filepath.Join(c.path(key), metaFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, errdefs.Wrap(errdefs.Unavailable, err, "skill environment")
	}
	var e Env
	if err := json.Unmarshal(data, &e); err != nil || e.Key != key || e.Dir != c.path(key) {
		return nil, nil // a leftover of another layout: rebuilt
	}
	return &e, nil
}

// Ensure returns the environment of req, building it first when it is not
// built (progress gets pip's output, line by line). Two builds of one key
// never run at once: a second caller waits for the first and uses its
// environment. A failed build leaves nothing behind and is an
// errdefs.Unavailable error with pip's reason.
func (c *Cache) Ensure(ctx context.Context, req Request, progress func(string)) (*Env, error) {
	key, err := req.Key()
	if err != nil {
		return nil, err
	}
	if e, err := c.read(key); e != nil || err != nil {
		return e, err
	}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return nil, errdefs.Wrap(errdefs.Unavailable, err, "skill environments")
	}
	unlock, err := filelock.Lock(c.path(key)+".lock", "skill environment")
	if err != nil {
		return nil, errdefs.Wrap(errdefs.Unavailable, err, "skill environment")
	}
	defer unlock()
	if e, err := c.read(key); e != nil || err != nil {
		return e, err
	}
	return c.build(ctx, req, key, progress)
}

func (c *Cache) build(ctx context.Context, req Request, key string, progress func(string)) (*Env, error) {
	if c.Builder == nil {
		return nil, errdefs.New(errdefs.Unavailable, "no backend here can build a skill's environment in a jail")
	}
	reqs, err := Normalized(req.Requirements)
	if err != nil {
		return nil, err
	}
	pip := c.PipWheel
	if pip == "" {
		if pip, err = PipWheel(); err != nil {
			return nil, err
		}
	}
	b := c.Bounds.WithDefaults()
	src, err := resolveSources(ctx, req.Python, pip, req.Index)
	if err != nil {
		return nil, err
	}
	dir := c.path(key)
	// An interrupted build's leftovers: this process holds the key's
	// build lock, so no other build of the key writes them.
	os.RemoveAll(dir)
	c.sweepStages(dirName(key))
	stage, err := os.MkdirTemp(c.Dir, stagePrefix+dirName(key)+"-")
	if err != nil {
		return nil, errdefs.Wrap(errdefs.Unavailable, err, "skill environment")
	}
	defer os.RemoveAll(stage)
	out, err := os.Open(stage)
	if err != nil {
		return nil, errdefs.Wrap(errdefs.Unavailable, err, "skill environment")
	}
	defer out.Close()
	j, err := job(req, reqs, dir, out, pip, src, b)
	if err != nil {
		return nil, err
	}
	bctx, cancel := context.WithTimeout(ctx, b.Timeout)
	defer cancel()
	var sawFull atomic.Bool // a tmpfs of the build filled up
	var mu sync.Mutex
	var shown, cut int64 // bytes of lines given to progress, and not
	stdout, err := c.Builder.Build(bctx, j, func(line string) {
		if strings.Contains(line, noSpace) {
			sawFull.Store(true)
		}
		if progress == nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if shown >= maxProgress {
			cut += int64(len(line)) + 1
			return
		}
		shown += int64(len(line)) + 1
		progress(line)
	})
	if cut > 0 {
		progress(fmt.Sprintf("[%d more bytes of the build's output not shown]", cut))
	}
	if bctx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
		why := ""
		if err != nil && err.Error() != bctx.Err().Error() {
			why = ": " + err.Error() // what the Builder knows of it
		}
		return nil, errdefs.New(errdefs.Unavailable, "building the environment for %s took longer than %s%s", Listed(reqs, " "), b.Timeout, why)
	}
	full := sawFull.Load()
	if err != nil {
		return nil, errdefs.Wrap(errdefs.Unavailable, err, "building the environment for "+Listed(reqs, " ")+b.spaceHint(full))
	}
	resolved, err := parseResult(stdout)
	if err != nil {
		full = full || strings.Contains(err.Error(), noSpace)
		return nil, errdefs.New(errdefs.Unavailable, "building the environment for %s%s: %v", Listed(reqs, " "), b.spaceHint(full), err)
	}
	base := req.Python
	if req.Target != nil {
		base = "" // no interpreter of its own: no links to one
	}
	if err := seal(stage, base, b.MaxBytes); err != nil {
		return nil, errdefs.Wrap(errdefs.Unavailable, err, "building the environment for "+strings.Join(reqs, " "))
	}
	e := &Env{
		Key: key, Dir: dir, Python: filepath.Join(dir, "bin", "python"), Base: req.Python,
		Requirements: reqs, Resolved: resolved, Index: req.Index.Redacted(), Sdists: req.Sdists, Pinned: req.Pinned,
		Target: req.Target, Built: time.Now().UTC(),
	}
	if req.Target != nil {
		e.Python, e.Sdists = "", false
	}
	meta, _ := json.MarshalIndent(e, "", "  ")
	if err := writeNew(filepath.Join(stage, metaFile), append(meta, '\n')); err != nil {
		return nil, errdefs.Wrap(errdefs.Unavailable, err, "skill environment")
	}
	if err := os.Chmod(stage, 0o755); err != nil {
		return nil, errdefs.Wrap(errdefs.Unavailable, err, "skill environment")
	}
	if err := os.Rename(stage, dir); err != nil {
		return nil, errdefs.Wrap(errdefs.Unavailable, err, "skill environment")
	}
	return e, nil
}

// maxProgress is how much of a build's output its progress shows: the
// build's steps write it (an sdist's setup.py, without end), and under
// serve the progress is the server's standard error.
const maxProgress = 1 << 20

// noSpace is how the kernel's ENOSPC reads in Python's and pip's messages.
const noSpace = "No space left on device"

// spaceHint names the limits a build that ran out of space ran into (full),
// or is empty.
func (b Bounds) spaceHint(full bool) string {
	if !full {
		return ""
	}
	return fmt.Sprintf(" (it ran out of space: the environment's size limit is %s, the scratch space's %s)",
		skill.FormatSize(b.MaxBytes), skill.FormatSize(b.ScratchBytes))
}

// writeNew creates the file at p with data, failing if anything is at p:
// O_EXCL with O_CREAT never follows a symbolic link there, so a link the
// build left cannot make the host write elsewhere.
func writeNew(p string, data []byte) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// seal makes the built tree the host's: owned by this process's user (the
// build wrote it as the jail's), nothing writable by others, no
// set-id bits, nothing but folders, regular files and symbolic links. It
// checks again what the build script checked, since the host does not
// trust what came out of the jail:
//   - no entry where the host writes its own (metaFile);
//   - every symbolic link stays inside the tree (a relative target without
//     ".."), but for the links of bin/ to base (venv's python, python3,
//     python3.X: base empty for an environment without an interpreter);
//     the host follows the environment's paths when it shows them in a
//     jail, and must never be led to one of its own files;
//   - the regular files' sizes (each at its full size: a sparse file's
//     holes count, and so does every hard link) add up to at most
//     maxBytes.
func seal(root, base string, maxBytes int64) error {
	uid, gid := os.Geteuid(), os.Getegid()
	var total int64
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == metaFile {
			return fmt.Errorf("the environment holds %s, a name skillbox writes itself", metaFile)
		}
		if err := os.Lchown(p, uid, gid); err != nil {
			return err
		}
		switch t := d.Type(); {
		case t&fs.ModeSymlink != 0:
			return checkLink(root, rel, base)
		case t.IsDir(), t.IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			if t.IsRegular() {
				if total += info.Size(); total > maxBytes || total < 0 {
					return fmt.Errorf("the environment's files add up to more than its size limit of %s (a sparse file counts at its full size, and so does every hard link)", skill.FormatSize(maxBytes))
				}
			}
			return os.Chmod(p, info.Mode().Perm()&0o755)
		default:
			return fmt.Errorf("%s: not a folder, file or link", p)
		}
	})
}

// checkLink accepts the symbolic link rel of the tree at root when its
// target is relative without "..", so that it can only lead down from its
// folder, or when it is one of bin/python* and resolves to base.
func checkLink(root, rel, base string) error {
	target, err := os.Readlink(filepath.Join(root, rel))
	if err != nil {
		return err
	}
	if target != "" && !filepath.IsAbs(target) && !slices.Contains(strings.Split(target, "/"), "..") {
		return nil
	}
	if dir, name := filepath.Split(rel); base != "" && dir == "bin/" && strings.HasPrefix(name, "python") {
		real, err := filepath.EvalSymlinks(filepath.Join(root, rel))
		realBase, errBase := filepath.EvalSymlinks(base)
		if err == nil && errBase == nil && real == realBase {
			return nil
		}
	}
	return fmt.Errorf("the environment holds a symbolic link %s -> %s, which leads out of it (only links to a relative path without \"..\" are kept)", rel, target)
}

// List returns the built environments, sorted by key.
func (c *Cache) List() ([]*Env, error) {
	ents, err := os.ReadDir(c.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, errdefs.Wrap(errdefs.Unavailable, err, "skill environments")
	}
	var envs []*Env
	for _, d := range ents {
		if !d.IsDir() || strings.HasPrefix(d.Name(), ".") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(c.Dir, d.Name(), metaFile))
		if err != nil {
			continue
		}
		var e Env
		if json.Unmarshal(data, &e) == nil && e.Dir == filepath.Join(c.Dir, d.Name()) {
			envs = append(envs, &e)
		}
	}
	slices.SortFunc(envs, func(a, b *Env) int { return strings.Compare(a.Key, b.Key) })
	return envs, nil
}

// Use marks the environment with key as in use until release is called:
// a shared lock on its use file (KEY.use beside the folder), which Prune
// never waits for and never removes an environment under. It is not the
// build lock, so a holder never blocks a build. Take it after Ensure and
// check with Lookup that the environment is still there (a prune may have
// come between).
func (c *Cache) Use(key string) (release func(), err error) {
	if strings.ContainsAny(key, "/\\") || !strings.HasPrefix(key, "sha256:") || len(key) < len("sha256:")+32 {
		return nil, errdefs.New(errdefs.Invalid, "environment key %q", key)
	}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return nil, errdefs.Wrap(errdefs.Unavailable, err, "skill environments")
	}
	release, err = filelock.Shared(c.path(key)+".use", "skill environment")
	if err != nil {
		return nil, errdefs.Wrap(errdefs.Unavailable, err, "skill environment")
	}
	return release, nil
}

// Prune removes the built environments for which keep is false, and
// returns what it removed and what it spared because it is in use (Use)
// or being built: Prune never waits for either. It also removes what
// builds that were killed left in their stage folders.
func (c *Cache) Prune(keep func(*Env) bool) (removed, inUse []*Env, err error) {
	c.sweepStages("")
	envs, err := c.List()
	if err != nil {
		return nil, nil, err
	}
	for _, e := range envs {
		if keep(e) {
			continue
		}
		ok, err := c.remove(e)
		if err != nil {
			return removed, inUse, err
		}
		if ok {
			removed = append(removed, e)
		} else {
			inUse = append(inUse, e)
		}
	}
	return removed, inUse, nil
}

// stagePrefix starts the name of a build's stage folder, followed by the
// key's folder name and a dash: a build killed before it removed its stage
// left one for the next build of the key, or Prune, to sweep.
const stagePrefix = ".build-"

// sweepStages removes the stages of builds of the key folder name dir that
// no longer run; the caller holds that key's build lock. With dir empty it
// sweeps every key's, taking each key's lock without waiting and passing
// over the stages of builds that hold it.
func (c *Cache) sweepStages(dir string) {
	ents, err := os.ReadDir(c.Dir)
	if err != nil {
		return
	}
	for _, d := range ents {
		rest, ok := strings.CutPrefix(d.Name(), stagePrefix)
		key, _, dashed := strings.Cut(rest, "-")
		if !ok || !dashed || len(key) != 32 || (dir != "" && key != dir) {
			continue // not a stage, or one of another key
		}
		if dir == "" {
			unlock, free, err := filelock.TryLock(filepath.Join(c.Dir, key)+".lock", "skill environment")
			if err != nil || !free {
				continue
			}
			os.RemoveAll(filepath.Join(c.Dir, d.Name()))
			unlock()
			continue
		}
		os.RemoveAll(filepath.Join(c.Dir, d.Name()))
	}
}

// remove removes e unless it is in use or being built (ok false). The
// lock files stay: a process may be waiting on them.
func (c *Cache) remove(e *Env) (ok bool, err error) {
	for _, lock := range []string{e.Dir + ".use", e.Dir + ".lock"} {
		unlock, ok, err := filelock.TryLock(lock, "skill environment")
		if err != nil {
			return false, errdefs.Wrap(errdefs.Unavailable, err, "skill environment")
		}
		if !ok {
			return false, nil
		}
		defer unlock()
	}
	if err := os.RemoveAll(e.Dir); err != nil {
		return false, errdefs.Wrap(errdefs.Unavailable, err, "remove skill environment")
	}
	return true, nil
}
