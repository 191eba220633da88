package bench

import (
	"fmt"
	"os/exec"
	"slices"
	"testing"
	"time"
)

// An orphan of a measured process is reparented to this process and
// reaped, so its CPU time can be counted (bubblewrap's case).
func TestOrphansReaped(t *testing.T) {
	if err := subreaper(); err != nil {
		t.Skipf("no child subreaper here: %v", err)
	}
	since := uptimeTicks()
	cmd := exec.Command("sh", "-c", "sleep 0.05 & echo $!")
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	var orphan int
	if _, err := fmt.Sscan(string(out), &orphan); err != nil {
		t.Fatalf("orphan pid %q: %v", out, err)
	}
	for deadline := time.Now().Add(30 * time.Second); slices.Contains(children(), orphan); {
		if time.Now().After(deadline) {
			t.Fatalf("orphan %d still a child of this process", orphan)
		}
		orphansCPU(since)
	}
}
