package worker

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestExitKillsGroupThenKillIsNoop: when a worker exits, what it left in
// its process group is killed while its pid still reserves the group's id;
// after it was reaped, Kill signals nothing (the id may be a stranger's by
// then).
func TestExitKillsGroupThenKillIsNoop(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", "sleep 30 & echo $!")
	p, err := Start(context.Background(), cmd, 4096)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("worker did not exit")
	}
	wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p.WaitOutput(wctx)
	child, err := strconv.Atoi(strings.TrimSpace(string(p.Stdout.Bytes())))
	if err != nil {
		t.Fatalf("child pid %q: %v", p.Stdout.Bytes(), err)
	}
	// The leftover sleep, in the worker's group, was killed at its exit.
	deadline := time.Now().Add(5 * time.Second)
	for alive(child) {
		if time.Now().After(deadline) {
			syscall.Kill(child, syscall.SIGKILL)
			t.Fatalf("the worker's leftover %d outlived it", child)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A process group now using the worker's old id would not be hit:
	// Kill does nothing once the worker is reaped.
	if !p.reaped {
		t.Fatal("worker not marked reaped after Done")
	}
	stranger := exec.Command("/bin/sleep", "30")
	stranger.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := stranger.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stranger.Process.Kill(); stranger.Wait() }()
	pid := p.Cmd.Process.Pid
	p.Cmd.Process.Pid = stranger.Process.Pid // as if the pid had been reused
	p.Kill()
	p.Cmd.Process.Pid = pid
	time.Sleep(50 * time.Millisecond)
	if !alive(stranger.Process.Pid) {
		t.Errorf("Kill after the reaping signalled the process group now using its id")
	}
}

// alive reports whether pid is a process that has not died (a zombie
// waiting for its new parent to reap it counts as dead).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
