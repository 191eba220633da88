package skillbox

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/skill"
)

// invalidDigest is what the watcher notes as the digest of a folder that
// is not a valid bundle: no skill has it.
const invalidDigest = "invalid"

// watchInterval is how often the watcher checks each skill folder the
// Runtime has prepared: one stat walk per folder per interval, whatever the
// number of calls, and a digest only when the walk saw a change.
const watchInterval = time.Second

// skillWatch is what the watcher knows of one skill folder.
type skillWatch struct {
	dir string
	// print is the folder's fingerprint (sizes, times, modes of every
	// entry) when digest was computed; digest is the folder's digest then
	// ("" until the first check).
	print  [sha256.Size]byte
	digest string
	// hint counts the calls that found another digest than digest (they
	// digest the folder anyway); hintSeen is hint at the last digest. A
	// difference forces a digest at the next check, whatever the
	// fingerprint says.
	hint, hintSeen uint64
}

// watch registers the folder of s with the watcher (starting it), and
// notes the digest the call found. It touches no file: the call has just
// digested the folder.
func (r *Runtime) watch(s *skill.Skill) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	w := r.watches[s.Dir]
	if w == nil {
		w = &skillWatch{dir: s.Dir}
		r.watches[s.Dir] = w
	}
	if w.digest != s.Digest {
		w.hint++
	}
	if !r.watching {
		r.watching = true
		r.closing.Add(1)
		go r.watcher()
	}
}

// watcher checks every watched folder each watchInterval until Close.
func (r *Runtime) watcher() {
	defer r.closing.Done()
	t := time.NewTicker(watchInterval)
	defer t.Stop()
	for {
		select {
		case <-r.stopWatch:
			return
		case <-t.C:
		}
		r.mu.Lock()
		dirs := make([]string, 0, len(r.watches))
		for d := range r.watches {
			dirs = append(dirs, d)
		}
		r.mu.Unlock()
		for _, d := range dirs {
			select {
			case <-r.stopWatch:
				return
			default:
			}
			r.check(d)
		}
	}
}

// check looks at one skill folder: if its fingerprint changed (or a call
// saw another digest), it digests it, and it evicts every cached sandbox,
// validator, sealed copy and kept resolution (refCache.forget) of the
// folder whose digest is not the current one. A folder that is gone loses
// them all. A folder that nothing is cached for
// any more is no longer watched.
func (r *Runtime) check(dir string) {
	r.mu.Lock()
	w := r.watches[dir]
	if w == nil || r.closed {
		r.mu.Unlock()
		return
	}
	hint, oldPrint, digest := w.hint, w.print, w.digest
	need := digest == "" || hint != w.hintSeen
	r.mu.Unlock()

	// The fingerprint before the digest: an edit between the two shows as
	// a change at the next check.
	print, err := fingerprint(dir)
	gone := errors.Is(err, fs.ErrNotExist)
	if err != nil && !gone {
		return // unreadable for now: try again next time
	}
	if !gone && (need || print != oldPrint) {
		if digest, err = skill.Digest(dir); err != nil {
			if gone = errors.Is(err, fs.ErrNotExist) || !isDir(dir); !gone {
				// Not a bundle as it is now (mid-edit, or made
				// invalid): it changed, so what was kept of it goes, and
				// it is digested again only once its fingerprint changes
				// again (or a call finds it valid). Digesting it at every
				// check hashed up to the bundle limit each second, for as
				// long as it stayed invalid.
				digest = invalidDigest
			}
		}
	}
	if gone || need || print != oldPrint {
		// A resolution kept of another digest goes too: inotify reports
		// no mount over the folder (or over a folder above it).
		r.refs.forget(dir, digest, gone)
	}

	r.mu.Lock()
	var toClose []sandbox.Sandbox
	defer func() {
		r.mu.Unlock()
		for _, sb := range toClose {
			r.closeLater(sb)
		}
	}()
	if r.closed || r.watches[dir] != w {
		return
	}
	if !gone && w.hint != hint {
		// A call found yet another digest while this check ran: decide
		// nothing now, digest again next time.
		return
	}
	if !gone {
		w.print, w.digest, w.hintSeen = print, digest, hint
	}
	cached := false
	for osb := range r.live {
		if osb.dir != dir || osb.evicted {
			continue
		}
		if gone || osb.digest != digest {
			if sb := r.evictLocked(osb); sb != nil {
				toClose = append(toClose, sb)
			}
			continue
		}
		cached = true
	}
	for d, cv := range r.validators {
		if cv.dir != dir {
			continue
		}
		if gone || d != digest {
			delete(r.validators, d)
			continue
		}
		cached = true
	}
	for s := range r.sealed {
		if s.Dir == dir && (gone || s.Digest != digest) {
			delete(r.sealed, s)
		}
	}
	if gone || !cached {
		delete(r.watches, dir)
	}
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// fingerprint sums what a stat walk of the bundle folder dir sees: for the
// folder (resolved, as skill.Digest resolves it) and every entry the digest
// covers, its path, type and permission bits, size, modification time and,
// where the platform has them, inode and change time. Any edit of the
// bundle changes it, short of one that restores every size and time.
func fingerprint(dir string) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return sum, err
	}
	h := sha256.New()
	h.Write([]byte(root))
	h.Write([]byte{0})
	var buf [8]byte
	put := func(v uint64) {
		binary.BigEndian.PutUint64(buf[:], v)
		h.Write(buf[:])
	}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == root {
				return err
			}
			// Unreadable entry: its error is part of the state.
			h.Write([]byte(p + "\x00!" + err.Error() + "\x00"))
			return nil
		}
		if p != root && (d.Name() == ".git" || d.IsDir() && d.Name() == "__pycache__") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			h.Write([]byte(p + "\x00?\x00"))
			return nil
		}
		h.Write([]byte(p))
		h.Write([]byte{0})
		put(uint64(fi.Mode()))
		put(uint64(fi.Size()))
		put(uint64(fi.ModTime().UnixNano()))
		ino, ctime := statExtra(fi)
		put(ino)
		put(uint64(ctime))
		if fi.Mode()&fs.ModeSymlink != 0 {
			t, _ := os.Readlink(p)
			h.Write([]byte(t))
			h.Write([]byte{0})
		}
		return nil
	})
	if err != nil {
		return sum, err
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}
