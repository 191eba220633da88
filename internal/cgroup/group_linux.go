package cgroup

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Parent is the directory, inside the caller's own group of each hierarchy,
// that holds every jail group.
const Parent = "skillbox"

// Limits are what a group allows; [Group.Start] writes them once the child
// is born, and the launching thread has left the group. A zero field is
// left unset.
type Limits struct {
	// Memory caps RAM and, where the host accounts swap separately, RAM+swap.
	Memory int64
	// Pids caps processes plus threads.
	Pids int
	// CPU is a quota in cores (0.5 = half of one core per period).
	CPU float64
}

// Group is one jail's control group, possibly spread over several v1
// hierarchies and the v2 one.
type Group struct {
	host   *Host
	limits Limits
	dirs   map[string]string // controller -> directory
	v1     []string          // distinct v1 directories
	v2     string            // the v2 directory, if any controller lives there
}

// ErrOverLimit is wrapped by the error of a limit the kernel refused
// because the group already uses more than it allows.
var ErrOverLimit = errors.New("the group already uses more than the limit")

// New creates group name under Parent for the controllers in use, and
// fails naming the controller when one of need is not offered. The group
// has no limits until [Group.Start] (or [Group.Limit]) writes l: a
// launching thread is never charged to a limited group.
// Names start with the creating process's pid and a dash ("<pid>-…"), which
// is how Sweep knows a group's owner; the first New of a process sweeps.
func (h *Host) New(name string, l Limits, need []string) (*Group, error) {
	sweepOnce.Do(func() { h.Sweep() })
	g := &Group{host: h, limits: l, dirs: map[string]string{}}
	for _, c := range need {
		v, base := h.Where(c)
		if v == 0 {
			return nil, fmt.Errorf("cgroup controller %s: not available", c)
		}
		dir := filepath.Join(base, Parent, name)
		if v == 2 {
			if err := enableV2(filepath.Join(base, Parent), base, c); err != nil {
				return nil, err
			}
			g.v2 = dir
		} else if !slices.Contains(g.v1, dir) {
			g.v1 = append(g.v1, dir)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			g.Remove()
			return nil, fmt.Errorf("cgroup controller %s: %w", c, err)
		}
		g.dirs[c] = dir
	}
	return g, nil
}

// enableV2 makes controller c available to children of parent (v2 only
// lets a group use controllers its parent delegates).
func enableV2(parent, base, c string) error {
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	for _, d := range []string{base, parent} {
		b, _ := os.ReadFile(filepath.Join(d, "cgroup.subtree_control"))
		if slices.Contains(strings.Fields(string(b)), c) {
			continue
		}
		if err := os.WriteFile(filepath.Join(d, "cgroup.subtree_control"), []byte("+"+c), 0); err != nil {
			return fmt.Errorf("cgroup v2: enable %s in %s: %w", c, d, err)
		}
	}
	return nil
}

func (g *Group) write(c, file, val string) error {
	dir, ok := g.dirs[c]
	if !ok {
		return nil
	}
	if err := os.WriteFile(filepath.Join(dir, file), []byte(val), 0); err != nil {
		return fmt.Errorf("cgroup: set %s to %s: %w", file, val, err)
	}
	return nil
}

func (g *Group) isV1(c string) bool {
	v, _ := g.host.Where(c)
	return v == 1
}

// Limit writes the group's limits. Start calls it after the fork; call it
// directly only for a group no thread of this process will join.
func (g *Group) Limit() error {
	l := g.limits
	if l.Memory > 0 {
		mem := strconv.FormatInt(l.Memory, 10)
		if g.isV1(Memory) {
			// v1 refuses (EBUSY) a limit below what the group already
			// uses once reclaim fails; v2 OOM-kills instead.
			if err := g.write(Memory, "memory.limit_in_bytes", mem); err != nil {
				if errors.Is(err, unix.EBUSY) {
					return fmt.Errorf("%w: %w", ErrOverLimit, err)
				}
				return err
			}
			// Swap counts too when the kernel accounts it; memsw >= mem.
			if _, err := os.Stat(filepath.Join(g.dirs[Memory], "memory.memsw.limit_in_bytes")); err == nil {
				if err := g.write(Memory, "memory.memsw.limit_in_bytes", mem); err != nil {
					return err
				}
			}
		} else {
			if err := g.write(Memory, "memory.max", mem); err != nil {
				return err
			}
			if err := g.write(Memory, "memory.swap.max", "0"); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	if l.Pids > 0 {
		if err := g.write(Pids, "pids.max", strconv.Itoa(l.Pids)); err != nil {
			return err
		}
	}
	if l.CPU > 0 {
		const period = 100000
		quota := max(int(l.CPU*period), 1000)
		if g.isV1(CPU) {
			if err := g.write(CPU, "cpu.cfs_period_us", strconv.Itoa(period)); err != nil {
				return err
			}
			return g.write(CPU, "cpu.cfs_quota_us", strconv.Itoa(quota))
		}
		return g.write(CPU, "cpu.max", fmt.Sprintf("%d %d", quota, period))
	}
	return nil
}

// Attach moves the calling OS thread into the group's v1 hierarchies and
// returns a function that moves it back. The caller must hold
// runtime.LockOSThread from before Attach until after restore, and fork
// the jail in between: the child is born in the group, which avoids the
// slow cgroup.procs migration. v2 hierarchies are handled by FD.
func (g *Group) Attach() (restore func() error, err error) {
	// "0" names the writing thread itself. The kernel migrates the current
	// thread without taking the global cgroup_threadgroup_rwsem for writing
	// (cgroup_procs_write_start: pid == 0 and a "tasks" write); naming it
	// by tid takes that lock, whose percpu_down_write waits for an RCU
	// grace period: 9-21 ms per call measured here.
	self := []byte("0")
	var moved []string
	restore = func() error {
		var first error
		for _, c := range moved {
			orig := filepath.Join(g.host.V1[c], g.host.self[c], "tasks")
			if err := os.WriteFile(orig, self, 0); err != nil && first == nil {
				first = fmt.Errorf("cgroup: move thread back: %w", err)
			}
		}
		return first
	}
	for c, dir := range g.dirs {
		if !g.isV1(c) {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, "tasks"), self, 0); err != nil {
			restore()
			return nil, fmt.Errorf("cgroup: attach thread to %s: %w", c, err)
		}
		moved = append(moved, c)
	}
	return restore, nil
}

// FD opens the v2 directory for SysProcAttr.CgroupFD (CLONE_INTO_CGROUP);
// it returns -1 and no error when the group has no v2 part.
func (g *Group) FD() (int, error) {
	if g.v2 == "" {
		return -1, nil
	}
	return unix.Open(g.v2, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
}

func readKey(path, key string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == key {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}

// OOMKills counts the processes the kernel's OOM killer killed in the group.
func (g *Group) OOMKills() int64 {
	dir, ok := g.dirs[Memory]
	if !ok {
		return 0
	}
	if g.isV1(Memory) {
		return readKey(filepath.Join(dir, "memory.oom_control"), "oom_kill")
	}
	return readKey(filepath.Join(dir, "memory.events"), "oom_kill")
}

// PidsMaxHits counts fork/clone calls refused by pids.max.
func (g *Group) PidsMaxHits() int64 {
	dir, ok := g.dirs[Pids]
	if !ok {
		return 0
	}
	return readKey(filepath.Join(dir, "pids.events"), "max")
}

// Counters returns the OOM-kill and pids.max counters, to be compared
// before and after a call.
func (g *Group) Counters() (oom, pids int64) { return g.OOMKills(), g.PidsMaxHits() }

// Counts are a group's limit counters at one moment: OOM kills and
// refused forks. A call's limit hit is a count that grew across it.
type Counts struct{ OOM, Pids int64 }

// Snapshot reads g's limit counters; a nil group (no cgroup) counts none.
func Snapshot(g *Group) Counts {
	if g == nil {
		return Counts{}
	}
	o, p := g.Counters()
	return Counts{o, p}
}

// PeakMemory returns the group's peak memory use in bytes, or 0.
func (g *Group) PeakMemory() int64 {
	path, _ := g.peakFile()
	if path == "" {
		return 0
	}
	b, _ := os.ReadFile(path)
	return parsePeak(b)
}

// peakFile is the file holding g's peak memory use and what written to it
// resets the peak to the current use ("" without a memory controller).
func (g *Group) peakFile() (path, reset string) {
	dir, ok := g.dirs[Memory]
	if !ok {
		return "", ""
	}
	if g.isV1(Memory) {
		return filepath.Join(dir, "memory.max_usage_in_bytes"), "0"
	}
	return filepath.Join(dir, "memory.peak"), "reset\n"
}

func parsePeak(b []byte) int64 {
	n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n
}

// PeakMeter reads a group's peak memory use since [StartPeak], or since
// the group was made ([OpenPeak]), from a file it keeps open: a read is
// one pread, where [Group.PeakMemory] opens the file each time (on
// cgroupfs the open is most of the cost).
type PeakMeter struct{ f *os.File }

// StartPeak resets g's peak memory use to its current use and returns a
// meter of the peak from then on, or nil (no memory controller, a nil
// group, or a cgroup v2 kernel before 6.12, whose memory.peak cannot be
// reset). On v1 the reset is the group's (memory.max_usage_in_bytes); on
// v2 it is the open file's own (memory.peak). Close it when done.
func StartPeak(g *Group) *PeakMeter { return openPeak(g, true) }

// OpenPeak returns a meter of g's peak memory use since g was made, as
// PeakMemory reads it, or nil (no memory controller, a nil group). Close
// it when done.
func OpenPeak(g *Group) *PeakMeter { return openPeak(g, false) }

func openPeak(g *Group, resetting bool) *PeakMeter {
	if g == nil {
		return nil
	}
	path, reset := g.peakFile()
	if path == "" {
		return nil
	}
	flag := os.O_RDONLY
	if resetting {
		flag = os.O_RDWR
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil
	}
	if resetting {
		if _, err := f.WriteString(reset); err != nil {
			f.Close()
			return nil
		}
	}
	return &PeakMeter{f}
}

// Read returns the peak in bytes since StartPeak, or 0 (a nil meter).
func (m *PeakMeter) Read() int64 {
	if m == nil {
		return 0
	}
	var b [32]byte
	n, _ := m.f.ReadAt(b[:], 0)
	return parsePeak(b[:n])
}

// Close closes the meter's file; a nil meter is a no-op.
func (m *PeakMeter) Close() {
	if m != nil {
		m.f.Close()
	}
}

// Pids lists the processes in the group (all hierarchies).
func (g *Group) Pids() []int {
	var out []int
	for _, dir := range g.dirs {
		b, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil && !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	return out
}

// Kill sends SIGKILL to every process in the group but this one. A v1
// cgroup.procs lists the process of every thread in the group, and while
// Start forks a child one of this process's threads is attached there
// (Attach): a Kill in that window would otherwise kill skillbox itself.
func (g *Group) Kill() {
	if g.v2 != "" {
		if os.WriteFile(filepath.Join(g.v2, "cgroup.kill"), []byte("1"), 0) == nil {
			return
		}
	}
	self := os.Getpid()
	for _, pid := range g.Pids() {
		if pid != self {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// Remove kills what is left in the group and removes its directories
// (with the groups inside them, [Threads]), retrying while the kernel
// still reports them busy (dying tasks).
func (g *Group) Remove() error {
	var dirs []string
	for _, d := range g.dirs {
		if !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for _, d := range dirs {
		if err := g.rmdir(d, deadline); err != nil {
			return err
		}
	}
	return nil
}

// rmdir removes the group directory d, the groups inside it first.
func (g *Group) rmdir(d string, deadline time.Time) error {
	ents, _ := os.ReadDir(d)
	for _, e := range ents {
		if e.IsDir() {
			if err := g.rmdir(filepath.Join(d, e.Name()), deadline); err != nil {
				return err
			}
		}
	}
	for {
		err := unix.Rmdir(d)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			return fmt.Errorf("cgroup: remove %s: %w", d, err)
		}
		g.Kill()
		// A process whose threads are all in an inner group (v1 lists a
		// process in the groups its threads are in).
		b, _ := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Threads is a group inside a [Group] that holds single threads of the
// group's processes and, since a thread is born in the group of the
// thread that creates it, every thread they create, however they are
// named. It enforces nothing (its threads count toward g's limits as
// before): it tells which threads descend from the ones moved there.
type Threads struct {
	dir  string
	file string // tasks (v1) or cgroup.threads (v2)
}

// NewThreads creates the group name inside g, in a hierarchy that can
// hold single threads, and moves thread tid (an id in this process's pid
// namespace) of one of g's processes into it. Any v1 hierarchy can (pids
// preferred). On v2 the group is made threaded: g becomes the domain of
// its threaded sub-tree, which keeps g's own limits (memory is a domain
// controller: it applies to g as a whole, never to the threaded group,
// which needs none). An error when g has no such hierarchy or the kernel
// refuses.
func (g *Group) NewThreads(name string, tid int) (*Threads, error) {
	var base, file string
	if d, ok := g.dirs[Pids]; ok && g.isV1(Pids) {
		base, file = d, "tasks"
	} else {
		for _, d := range g.v1 {
			base, file = d, "tasks"
			break
		}
	}
	if base == "" && g.v2 != "" {
		base, file = g.v2, "cgroup.threads"
	}
	if base == "" {
		return nil, errors.New("cgroup: no hierarchy holds single threads")
	}
	t := &Threads{dir: filepath.Join(base, name), file: file}
	if err := os.Mkdir(t.dir, 0o755); err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	if file == "cgroup.threads" {
		if err := os.WriteFile(filepath.Join(t.dir, "cgroup.type"), []byte("threaded"), 0); err != nil {
			unix.Rmdir(t.dir)
			return nil, fmt.Errorf("cgroup v2: make %s threaded: %w", t.dir, err)
		}
	}
	if err := os.WriteFile(filepath.Join(t.dir, file), []byte(strconv.Itoa(tid)), 0); err != nil {
		unix.Rmdir(t.dir)
		return nil, fmt.Errorf("cgroup: move thread %d to %s: %w", tid, t.dir, err)
	}
	return t, nil
}

// Threads lists the ids of the threads in t.
func (t *Threads) Threads() ([]int, error) {
	b, err := os.ReadFile(filepath.Join(t.dir, t.file))
	if err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	var ids []int
	for _, f := range strings.Fields(string(b)) {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("cgroup: %s: %q is not a thread id", t.file, f)
		}
		ids = append(ids, n)
	}
	return ids, nil
}

// Remove removes t; the kernel refuses while a thread is in it.
func (t *Threads) Remove() error {
	if err := unix.Rmdir(t.dir); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("cgroup: remove %s: %w", t.dir, err)
	}
	return nil
}

// Start starts cmd so that the process is born in g, with no migration
// after the fact: with CLONE_INTO_CGROUP for the v2 part, and for the v1
// hierarchies from an OS thread attached to g for the fork (see Attach for
// why that costs microseconds where moving the child would cost an RCU
// grace period). The child is never outside g. A nil g just starts cmd.
//
// Then, with the launching thread back in its own groups, Start writes the
// limits: nothing of skillbox is ever charged to a limited group, so even
// a limit of one page can only fail the child. The child must not run
// anything the limits are meant for before Start returns; when writing them
// fails, the error wraps ErrOverLimit if the child already used more, and
// the child was killed and waited for.
func (g *Group) Start(cmd *exec.Cmd) error {
	if g == nil {
		return cmd.Start()
	}
	fd, err := g.FD()
	if err != nil {
		return err
	}
	if fd >= 0 {
		defer unix.Close(fd)
		if cmd.SysProcAttr == nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{}
		}
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, fd
	}
	runtime.LockOSThread()
	restore, err := g.Attach()
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	err = cmd.Start()
	if rerr := restore(); rerr != nil {
		// Leave the thread locked to this goroutine: a thread stuck in the
		// group must not run other goroutines, and the runtime discards it
		// when this goroutine exits still locked. No limit was written, so
		// the group cannot harm it.
		if err == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		return fmt.Errorf("%v (and %w)", err, rerr)
	}
	runtime.UnlockOSThread()
	if err != nil {
		return err
	}
	if err := g.Limit(); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return err
	}
	return nil
}
