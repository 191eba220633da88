package proctest

import (
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"
)

// StartTime is the same for a live process each time it is read, and ""
// once the process has ended (a zombie, then reaped).
func TestStartTime(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	if StartTime(os.Getpid()) == "" || StartTime(os.Getpid()) != StartTime(os.Getpid()) {
		t.Fatalf("this process: %q", StartTime(os.Getpid()))
	}
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	pid := cmd.Process.Pid
	if StartTime(pid) == "" {
		t.Fatal("a running child has no start time")
	}
	cmd.Process.Kill()
	// A zombie until waited for, and gone already.
	for deadline := time.Now().Add(10 * time.Second); StartTime(pid) != ""; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a killed child still has a start time")
		}
	}
	cmd.Wait()
	if got := StartTime(pid); got != "" {
		t.Errorf("reaped child: %q", got)
	}
}
