package cgroup

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// staleAge is how old an ownerless empty group must be before Sweep
// removes it.
const staleAge = time.Minute

var sweepOnce sync.Once

// Sweep removes the groups under Parent that skillbox processes left behind
// when they died without cleaning up (killed, or crashed): groups named
// "<pid>-…" whose owner pid no longer exists, that hold no process, and
// that are older than a minute. Groups inside them go first. It returns the
// directories it removed; one that cannot be removed is left as it is.
//
// Sweep never kills. A group with a process in it is kept whoever owns it,
// and the age rule spares a group that a live skillbox in another pid
// namespace (sharing this cgroup, its pid unknown here) just created and is
// about to fill.
func (h *Host) Sweep() []string { return h.sweep(staleAge) }

// sweep is Sweep for groups older than minAge.
func (h *Host) sweep(minAge time.Duration) []string {
	var removed []string
	seen := map[string]bool{}
	for _, c := range []string{Memory, Pids, CPU} {
		v, base := h.Where(c)
		if v == 0 || seen[base] {
			continue
		}
		seen[base] = true
		dir := filepath.Join(base, Parent)
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if e.IsDir() && ownerGone(e.Name()) {
				removed = removeTree(filepath.Join(dir, e.Name()), time.Now().Add(-minAge), removed)
			}
		}
	}
	return removed
}

// ownerGone reports whether name is "<pid>-…" for a pid that does not
// exist in this pid namespace.
func ownerGone(name string) bool {
	p, _, ok := strings.Cut(name, "-")
	pid, err := strconv.Atoi(p)
	if !ok || err != nil || pid <= 0 {
		return false
	}
	return errors.Is(unix.Kill(pid, 0), unix.ESRCH)
}

// removeTree removes the group at dir and the groups inside it, deepest
// first, when each is empty and was created before cutoff, and appends
// what it removed to removed.
func removeTree(dir string, cutoff time.Time, removed []string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return removed
	}
	for _, e := range ents {
		if e.IsDir() {
			removed = removeTree(filepath.Join(dir, e.Name()), cutoff, removed)
		}
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.ModTime().After(cutoff) {
		return removed
	}
	if procs, err := os.ReadFile(filepath.Join(dir, "cgroup.procs")); err != nil || len(strings.TrimSpace(string(procs))) > 0 {
		return removed
	}
	if unix.Rmdir(dir) == nil {
		removed = append(removed, dir)
	}
	return removed
}
