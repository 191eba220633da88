//go:build linux

package cgroup

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// rootHost returns the host's cgroup layout, skipping the test unless it
// runs as root on a host that mounts every controller of need.
func rootHost(t *testing.T, need ...string) *Host {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create cgroups")
	}
	h, err := Detect()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range need {
		if v, _ := h.Where(c); v == 0 {
			t.Skipf("controller %s not mounted: %s", c, h.Describe(c))
		}
	}
	return h
}

func TestGroupLifecycle(t *testing.T) {
	h := rootHost(t, Memory, Pids)
	name := strconv.Itoa(os.Getpid()) + "-lifecycle"
	g, err := h.New(name, Limits{Memory: 64 << 20, Pids: 8}, []string{Memory, Pids})
	if err != nil {
		t.Fatal(err)
	}
	_, dir := h.Where(Pids)
	pidsMax := func() string {
		b, err := os.ReadFile(filepath.Join(dir, Parent, name, "pids.max"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	// No limit until the child is born (Start, or Limit by hand).
	if got := pidsMax(); got != "max\n" {
		t.Errorf("pids.max after New = %q, want max", got)
	}
	if err := g.Limit(); err != nil {
		t.Fatal(err)
	}
	if got := pidsMax(); got != "8\n" {
		t.Errorf("pids.max = %q, want 8", got)
	}
	if oom, pids := g.Counters(); oom != 0 || pids != 0 {
		t.Errorf("fresh counters %d %d", oom, pids)
	}
	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, Parent, name)); !os.IsNotExist(err) {
		t.Errorf("group not removed: %v", err)
	}
}

func TestMissingController(t *testing.T) {
	h := &Host{V1: map[string]string{}, self: map[string]string{}}
	if _, err := h.New("x", Limits{}, []string{Memory}); err == nil {
		t.Fatal("want an error naming the missing controller")
	}
}

// TestStartBornInGroup proves Group.Start: the child is a member of the
// group in every controller from its first instruction, and the launching
// thread is back in its own groups afterwards (so later goroutines on it
// are not counted against, or killed with, the jail).
func TestStartBornInGroup(t *testing.T) {
	h := rootHost(t, Memory, Pids)
	before, err := os.ReadFile("/proc/thread-self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	name := "test-start-" + strconv.Itoa(os.Getpid())
	g, err := h.New(name, Limits{Memory: 64 << 20, Pids: 8}, []string{Memory, Pids})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Remove()
	// The child prints its own membership before anything could move it.
	cmd := exec.Command("/bin/cat", "/proc/self/cgroup")
	var out strings.Builder
	cmd.Stdout = &out
	runtime.LockOSThread()
	err = g.Start(cmd)
	after, rerr := os.ReadFile("/proc/thread-self/cgroup")
	runtime.UnlockOSThread()
	if err != nil || rerr != nil {
		t.Fatal(err, rerr)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if string(after) != string(before) {
		t.Errorf("launching thread not moved back:\nbefore %s\nafter  %s", before, after)
	}
	for _, c := range []string{Memory, Pids} {
		v, _ := h.Where(c)
		want := filepath.Join(h.self[c], Parent, name)
		if v == 2 {
			want = filepath.Join(h.self[""], Parent, name)
		}
		found := false
		for _, line := range strings.Split(out.String(), "\n") {
			parts := strings.SplitN(line, ":", 3)
			if len(parts) != 3 || parts[2] != want {
				continue
			}
			if v == 2 && parts[0] == "0" || slices.Contains(strings.Split(parts[1], ","), c) {
				found = true
			}
		}
		if !found {
			t.Errorf("child not born in %s group %s:\n%s", c, want, out.String())
		}
	}
}

// TestTinyLimitSparesLauncher: a memory limit far below what any process
// needs fails only the child. The launching thread is in the group while
// it forks (Attach), and a limit written before the fork got the whole
// test binary OOM-killed (skillbox itself, exit 137, with --memory 1k).
// TestKillSparesAttachedThread kills a group while a thread of this
// process is attached to it, as during Start: the group's v1 cgroup.procs
// then lists this process, which Kill must not kill (without the check
// this test binary dies of SIGKILL).
func TestKillSparesAttachedThread(t *testing.T) {
	h := rootHost(t, Memory, Pids)
	g, err := h.New(strconv.Itoa(os.Getpid())+"-attached", Limits{}, []string{Memory, Pids})
	if err != nil {
		t.Fatal(err)
	}
	if !g.isV1(Pids) && !g.isV1(Memory) {
		g.Remove()
		t.Skip("no v1 hierarchy: nothing is attached")
	}
	runtime.LockOSThread()
	restore, err := g.Attach()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	listed := slices.Contains(g.Pids(), os.Getpid())
	g.Kill()
	if err := restore(); err != nil {
		t.Fatal(err) // the thread stays locked: the runtime discards it
	}
	runtime.UnlockOSThread()
	if !listed {
		t.Errorf("this process (%d) is not among the attached group's processes %v", os.Getpid(), g.Pids())
	}
	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}
}

func TestTinyLimitSparesLauncher(t *testing.T) {
	h := rootHost(t, Memory, Pids)
	for _, limit := range []int64{1, 4096, 64 << 10, 1 << 20} {
		name := strconv.Itoa(os.Getpid()) + "-tiny-" + strconv.FormatInt(limit, 10)
		g, err := h.New(name, Limits{Memory: limit, Pids: 8}, []string{Memory, Pids})
		if err != nil {
			t.Fatal(err)
		}
		// The child is a Go-sized process: this test binary, asked to
		// run no test.
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		err = g.Start(cmd)
		switch {
		case err == nil:
			// Born under its limit before using more: the OOM killer or the
			// allocator stops it, never this process.
			if werr := cmd.Wait(); werr == nil && limit < 1<<20 {
				t.Errorf("limit %d: the child ran to completion", limit)
			}
		case !errors.Is(err, ErrOverLimit):
			t.Errorf("limit %d: %v, want an error wrapping ErrOverLimit", limit, err)
		case cmd.ProcessState == nil:
			t.Errorf("limit %d: the child was not waited for", limit)
		}
		if err := g.Remove(); err != nil {
			t.Errorf("limit %d: %v", limit, err)
		}
	}
}

// threadsScript prints the id of a thread it starts, then, once a line
// comes on stdin, has that thread start another and prints its id.
const threadsScript = `
import sys, threading, time
go = threading.Event()
def inner(): time.sleep(60)
def outer():
    print(threading.get_native_id(), flush=True)
    go.wait()
    t = threading.Thread(target=inner, daemon=True); t.start()
    print(t.native_id, flush=True)
    time.sleep(60)
threading.Thread(target=outer, daemon=True).start()
sys.stdin.readline(); go.set(); time.sleep(60)
`

// TestThreadsHoldDescendants proves NewThreads: a thread moved into a
// Threads group is there, and so is a thread it starts afterwards, not
// the process's other threads; Remove removes the group with its
// Threads group (killing what is left).
func TestThreadsHoldDescendants(t *testing.T) {
	h := rootHost(t, Pids)
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("needs python3 for a process with threads")
	}
	g, err := h.New(strconv.Itoa(os.Getpid())+"-threads", Limits{}, []string{Pids})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Remove()
	cmd := exec.Command(py, "-c", threadsScript)
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := g.Start(cmd); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	line := func() int {
		t.Helper()
		var b [32]byte
		n, _ := out.Read(b[:])
		id, err := strconv.Atoi(strings.TrimSpace(string(b[:n])))
		if err != nil {
			t.Fatalf("thread id %q: %v", b[:n], err)
		}
		return id
	}
	outer := line()
	th, err := g.NewThreads("t", outer)
	if err != nil {
		t.Fatal(err)
	}
	in.Write([]byte("go\n"))
	inner := line()
	ids, err := th.Threads()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	if want := []int{outer, inner}; !slices.Equal(ids, want) {
		t.Fatalf("threads group holds %v, want %v (the moved thread and the one it started; main thread %d)", ids, want, cmd.Process.Pid)
	}
	if err := th.Remove(); err == nil {
		t.Fatal("a threads group with threads in it was removed")
	}
	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}
}
