//go:build linux

package cgroup

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// The v2 path has two halves. The files a group writes and reads are
// checked against a fake hierarchy (TestV2Files), since the machines this
// project is tested on mount memory, pids and cpu only on v1. Birth by
// CLONE_INTO_CGROUP, cgroup.kill and removal are checked against the real
// v2 hierarchy with whatever controller it does offer (TestV2Birth).

// TestV2Files: limits land in the v2 files with v2 syntax, the parent
// delegates each controller, and the counters come from the v2 files.
func TestV2Files(t *testing.T) {
	root := t.TempDir()
	h := &Host{V2: root, V2Controllers: []string{Memory, Pids, CPU}, V1: map[string]string{}, self: map[string]string{"": "/"}}
	g, err := h.New("1-v2files", Limits{Memory: 64 << 20, Pids: 8, CPU: 0.5}, []string{Memory, Pids, CPU})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Limit(); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, Parent, "1-v2files")
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for file, want := range map[string]string{
		"memory.max":      strconv.Itoa(64 << 20),
		"memory.swap.max": "0",
		"pids.max":        "8",
		"cpu.max":         "50000 100000",
	} {
		if got := read(filepath.Join(dir, file)); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	// A real cgroup.subtree_control takes one "+controller" per write; the
	// fake keeps the last, so check that every controller was written to
	// both levels by asking for a group that needs only one of them.
	for _, d := range []string{root, filepath.Join(root, Parent)} {
		if got := read(filepath.Join(d, "cgroup.subtree_control")); !strings.HasPrefix(got, "+") {
			t.Errorf("%s/cgroup.subtree_control = %q, want a +controller write", d, got)
		}
	}
	if g.FD(); g.v2 != dir {
		t.Errorf("v2 dir %q, want %q", g.v2, dir)
	}
	os.WriteFile(filepath.Join(dir, "memory.events"), []byte("low 0\nhigh 0\nmax 4\noom 2\noom_kill 2\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "pids.events"), []byte("max 5\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "memory.peak"), []byte("1234\n"), 0o644)
	if oom, pids := g.Counters(); oom != 2 || pids != 5 {
		t.Errorf("counters oom=%d pids=%d, want 2 and 5", oom, pids)
	}
	if p := g.PeakMemory(); p != 1234 {
		t.Errorf("peak %d, want 1234", p)
	}
	// A meter opened without a reset reads the same file, and leaves it
	// as it was.
	m := OpenPeak(g)
	if p := m.Read(); p != 1234 {
		t.Errorf("OpenPeak's meter read %d, want 1234", p)
	}
	m.Close()
	if got := read(filepath.Join(dir, "memory.peak")); got != "1234\n" {
		t.Errorf("memory.peak = %q after OpenPeak; it must not be reset", got)
	}
}

// TestV2Birth: on the host's real v2 hierarchy a started process is born
// in its group (CLONE_INTO_CGROUP), Kill ends it, and
// Remove removes the group.
func TestV2Birth(t *testing.T) {
	h := rootHost(t)
	if h.V2 == "" {
		t.Skip("no cgroup v2 hierarchy mounted")
	}
	// Any controller the v2 hierarchy offers makes New place the group
	// there; the test needs no limit from it.
	var ctl string
	for _, c := range h.V2Controllers {
		if v, _ := h.Where(c); v == 2 {
			ctl = c
			break
		}
	}
	if ctl == "" {
		t.Skipf("the v2 hierarchy at %s offers no controller (controllers: %q)", h.V2, h.V2Controllers)
	}
	name := strconv.Itoa(os.Getpid()) + "-v2birth"
	g, err := h.New(name, Limits{}, []string{ctl})
	if err != nil {
		t.Skipf("cannot create a v2 group with %s here: %v", ctl, err)
	}
	defer g.Remove()
	want := "0::" + filepath.Join(h.self[""], Parent, name)

	cmd := exec.Command("/bin/cat", "/proc/self/cgroup")
	var out strings.Builder
	cmd.Stdout = &out
	if err := g.Start(cmd); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(strings.Split(out.String(), "\n"), want) {
		t.Errorf("child not born in %s:\n%s", want, out.String())
	}

	sleeper := exec.Command("/bin/sleep", "30")
	if err := g.Start(sleeper); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(g.v2, "cgroup.kill")); err != nil {
		sleeper.Process.Kill()
		sleeper.Wait()
		t.Skipf("kernel has no cgroup.kill: %v", err)
	}
	g.Kill()
	err = sleeper.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("sleeper after Kill: %v, want killed by SIGKILL", err)
	}
	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(g.v2); !os.IsNotExist(err) {
		t.Errorf("group %s not removed: %v", g.v2, err)
	}
}
