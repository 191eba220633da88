//go:build linux

package cgroup

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func TestGroupLifecycle(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create cgroups")
	}
	h, err := Detect()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{Memory, Pids} {
		if v, _ := h.Where(c); v == 0 {
			t.Skipf("controller %s not mounted: %s", c, h.Describe(c))
		}
	}
	name := "test-" + strconv.Itoa(os.Getpid())
	g, err := h.New(name, Limits{Memory: 64 << 20, Pids: 8}, []string{Memory, Pids})
	if err != nil {
		t.Fatal(err)
	}
	_, dir := h.Where(Pids)
	b, err := os.ReadFile(filepath.Join(dir, Parent, name, "pids.max"))
	if err != nil || string(b) != "8\n" {
		t.Errorf("pids.max = %q, %v", b, err)
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
