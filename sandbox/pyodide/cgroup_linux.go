package pyodide

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/skillbox-dev/skillbox/internal/cgroup"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// cgroups is where this host offers the memory and pids controllers to
// this process; avail lists the usable ones.
type cgroups struct {
	host   *cgroup.Host
	avail  []string
	detail map[string]string
}

// detectCgroups finds the memory and pids controllers (v1, v2 or hybrid)
// and whether this user may create groups there. fake marks controllers
// missing, for the refusal tests.
func detectCgroups(fake map[string]bool) cgroups {
	c := cgroups{detail: map[string]string{}}
	h, err := cgroup.Detect()
	for _, ctl := range []string{cgroup.Memory, cgroup.Pids} {
		switch {
		case fake[ctl]:
			c.detail[ctl] = "fake: controller missing"
		case err != nil:
			c.detail[ctl] = err.Error()
		default:
			v, dir := h.Where(ctl)
			c.detail[ctl] = h.Describe(ctl)
			if v == 0 {
				continue
			}
			if aerr := unix.Access(dir, unix.W_OK); aerr != nil {
				c.detail[ctl] += ": not writable by this user"
				continue
			}
			c.avail = append(c.avail, ctl)
		}
	}
	if err == nil {
		c.host = h
	}
	return c
}

func (c cgroups) has(ctl string) bool {
	for _, a := range c.avail {
		if a == ctl {
			return true
		}
	}
	return false
}

// features are the limits the controllers let the backend enforce.
func (c cgroups) features() []sandbox.Feature {
	var f []sandbox.Feature
	if c.has(cgroup.Memory) {
		f = append(f, sandbox.FeatureMemory)
	}
	if c.has(cgroup.Pids) {
		f = append(f, sandbox.FeaturePids)
	}
	return f
}

func (c cgroups) layers() []sandbox.Layer {
	return []sandbox.Layer{
		{Name: "cgroup-memory", Available: c.has(cgroup.Memory), Detail: c.detail[cgroup.Memory]},
		{Name: "cgroup-pids", Available: c.has(cgroup.Pids), Detail: c.detail[cgroup.Pids]},
	}
}

var groupSeq atomic.Uint64

// workerGroup is one worker's cgroup.
type workerGroup struct {
	g *cgroup.Group
	// sub are a host's tracked Web Worker threads, each in a group of
	// its own inside g (track).
	sub map[int]*cgroup.Threads
}

// track moves each thread of ids (a host's idle Web Worker threads, which
// no skill code has run in) not yet tracked into a group of its own
// inside w: a thread one of them creates once it runs a skill (a nested
// Worker, which Deno's terminate() of its parent does not stop) is born
// there, whatever it is named. An error when a thread cannot be placed
// (no group, no hierarchy that holds single threads, a refusal).
func (w *workerGroup) track(ids map[int]bool) error {
	if w == nil {
		return errors.New("the host has no cgroup (neither the memory nor the pids controller is usable)")
	}
	if len(ids) == 0 {
		return errors.New("the host's Web Worker threads were not found")
	}
	for tid := range ids {
		if t := w.sub[tid]; t != nil {
			// Tracked already, unless its id was reused by a thread
			// born since (not in its group).
			in, err := t.Threads()
			if err != nil {
				return err
			}
			if !slices.Contains(in, tid) {
				return fmt.Errorf("Web Worker thread %d is not in its cgroup (its id was reused)", tid)
			}
			continue
		}
		t, err := w.g.NewThreads("w"+strconv.Itoa(tid), tid)
		if err != nil {
			return err
		}
		if w.sub == nil {
			w.sub = map[int]*cgroup.Threads{}
		}
		w.sub[tid] = t
	}
	return nil
}

// strays counts the threads left in the groups of tracked threads that
// have ended: threads a call's worker created that outlive it. The groups
// of ended threads that hold nothing are removed. -1 when a group cannot
// be read.
func (w *workerGroup) strays() int {
	if w == nil {
		return 0
	}
	n := 0
	for tid, t := range w.sub {
		ids, err := t.Threads()
		if err != nil {
			return -1
		}
		switch {
		case slices.Contains(ids, tid): // still running
		case len(ids) == 0:
			if t.Remove() == nil {
				delete(w.sub, tid)
			}
		default:
			n += len(ids)
		}
	}
	return n
}

// newGroup creates a worker's group, named like the linux backend's jails
// (<pid>-<seq> under skillbox/ in this process's own group), with
// memory = memBaseline + the Spec's budget and pids = denoTasks + its
// pids limit. nil when no controller is usable.
func (c cgroups) newGroup(l sandbox.Limits) (*workerGroup, error) {
	if c.host == nil || len(c.avail) == 0 {
		return nil, nil
	}
	name := strconv.Itoa(os.Getpid()) + "-pyodide" + strconv.FormatUint(groupSeq.Add(1), 10)
	lim := cgroup.Limits{}
	if c.has(cgroup.Memory) {
		lim.Memory = memBaseline + l.Memory
	}
	if c.has(cgroup.Pids) {
		lim.Pids = denoTasks + l.Pids
	}
	g, err := c.host.New(name, lim, c.avail)
	if err != nil {
		return nil, fmt.Errorf("worker cgroup: %w", err)
	}
	return &workerGroup{g: g}, nil
}

// launch starts cmd inside the group: born there from a thread attached
// to the v1 hierarchies, and with CLONE_INTO_CGROUP on v2, so no
// cgroup.procs migration is needed.
func (w *workerGroup) launch(cmd *exec.Cmd) error {
	if w == nil {
		return cmd.Start()
	}
	return w.g.Start(cmd)
}

// oomKilled reports whether the kernel's OOM killer killed in the group.
func (w *workerGroup) oomKilled() bool { return w != nil && w.g.OOMKills() > 0 }

// workerThreads counts the Web Worker threads of the group's processes
// (without a group: of the process pid) by their names: Deno names each
// worker's thread worker-<id>. A skill can rename its own thread
// (node:process's title setter needs no permission), so a name tells only
// about threads no skill code has run in; see idleWorkers.
func (w *workerGroup) workerThreads(pid int) int {
	n := 0
	for _, name := range w.threads(pid) {
		if strings.HasPrefix(name, "worker-") {
			n++
		}
	}
	return n
}

// idleWorkers returns the thread ids of the Web Worker threads of the
// group's processes (without a group: of the process pid), named as Deno
// names them; nil when there are none.
func (w *workerGroup) idleWorkers(pid int) map[int]bool {
	var ids map[int]bool
	for tid, name := range w.threads(pid) {
		if strings.HasPrefix(name, "worker-") {
			if ids == nil {
				ids = map[int]bool{}
			}
			ids[tid] = true
		}
	}
	return ids
}

// alive counts the threads of ids that still run in the group's processes
// (without a group: in the process pid), whatever their names are now.
func (w *workerGroup) alive(pid int, ids map[int]bool) int {
	n := 0
	for tid := range w.threads(pid) {
		if ids[tid] {
			n++
		}
	}
	return n
}

// threads maps the thread ids of the group's processes (without a group:
// of the process pid) to their names.
func (w *workerGroup) threads(pid int) map[int]string {
	pids := []int{pid}
	if w != nil {
		pids = w.g.Pids()
	}
	m := map[int]string{}
	for _, pid := range pids {
		tasks, _ := filepath.Glob(filepath.Join("/proc", strconv.Itoa(pid), "task", "*", "comm"))
		for _, c := range tasks {
			tid, err := strconv.Atoi(filepath.Base(filepath.Dir(c)))
			if err != nil {
				continue
			}
			if b, err := os.ReadFile(c); err == nil {
				m[tid] = strings.TrimSpace(string(b))
			}
		}
	}
	return m
}

// pidsRefused reports whether a fork or thread was refused by pids.max.
func (w *workerGroup) pidsRefused() bool { return w != nil && w.g.PidsMaxHits() > 0 }

// peak is the group's peak memory use in bytes.
func (w *workerGroup) peak() int64 {
	if w == nil {
		return 0
	}
	return w.g.PeakMemory()
}

// remove kills what is left in the group and removes it.
func (w *workerGroup) remove() {
	if w != nil {
		w.g.Remove()
	}
}
