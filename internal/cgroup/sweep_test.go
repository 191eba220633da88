//go:build linux

package cgroup

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// deadPid returns the pid of a process that has exited and been reaped.
func deadPid(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("/bin/true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
		t.Skipf("pid %d was reused at once", pid)
	}
	return pid
}

// TestSweep: groups of a dead owner are removed, nested ones included;
// a live owner's group, a dead owner's group with a process in it, and a
// dead owner's group younger than staleAge are kept.
func TestSweep(t *testing.T) {
	h := rootHost(t, Pids)
	dead := strconv.Itoa(deadPid(t))
	stale := dead + "-sweep1"
	busy := dead + "-sweep2"
	live := strconv.Itoa(os.Getpid()) + "-sweep3"
	var groups []*Group
	for _, name := range []string{stale, busy, live} {
		g, err := h.New(name, Limits{}, []string{Pids})
		if err != nil {
			t.Fatal(err)
		}
		groups = append(groups, g)
	}
	defer func() {
		for _, g := range groups {
			g.Remove()
		}
	}()
	_, base := h.Where(Pids)
	dir := func(name string) string { return filepath.Join(base, Parent, name) }
	if err := os.Mkdir(filepath.Join(dir(stale), "nested"), 0o755); err != nil {
		t.Fatal(err)
	}
	sleeper := exec.Command("/bin/sleep", "30")
	if err := groups[1].Start(sleeper); err != nil {
		t.Fatal(err)
	}
	defer func() { sleeper.Process.Kill(); sleeper.Wait() }()

	// Sweep may meet groups of other skillbox processes on this machine:
	// the test judges only its own.
	swept := func(minAge time.Duration) map[string]bool {
		m := map[string]bool{}
		for _, d := range h.sweep(minAge) {
			m[d] = true
		}
		return m
	}
	// Young groups are spared whoever owns them.
	if got := swept(staleAge); got[dir(stale)] || got[dir(busy)] || got[dir(live)] {
		t.Errorf("swept young groups: %v", got)
	}
	time.Sleep(10 * time.Millisecond)
	got := swept(0)
	if !got[dir(stale)] || !got[filepath.Join(dir(stale), "nested")] {
		t.Errorf("swept %v, want the stale group and its nested group", got)
	}
	if _, err := os.Stat(dir(stale)); !os.IsNotExist(err) {
		t.Errorf("stale group %s kept: %v", stale, err)
	}
	for _, name := range []string{busy, live} {
		if got[dir(name)] {
			t.Errorf("group %s swept", name)
		}
		if _, err := os.Stat(dir(name)); err != nil {
			t.Errorf("group %s removed: %v", name, err)
		}
	}
}
