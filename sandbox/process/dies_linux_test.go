package process

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/internal/proctest"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// hostEnv names the pid file a re-executed test binary's call writes: set,
// TestWorkerDiesWithHost plays the skillbox host instead.
const hostEnv = "SKILLBOX_TEST_PROCESS_HOST_PIDFILE"

// sleeperSkill writes its worker's pid to params["pidfile"] and sleeps.
const sleeperSkill = `import os, time
from skillware.core.base_skill import BaseSkill

class Sleeper(BaseSkill):
    def execute(self, params):
        with open(params["pidfile"] + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.rename(params["pidfile"] + ".tmp", params["pidfile"])
        time.sleep(120)
        return {}
`

// TestWorkerDiesWithHost: a worker whose skillbox is killed with SIGKILL
// mid-call does not run on: it gets the parent-death signal. The host is
// this test binary, re-executed; the worker is found by the pid its skill
// wrote.
func TestWorkerDiesWithHost(t *testing.T) {
	if pidfile := os.Getenv(hostEnv); pidfile != "" {
		playHost(t, pidfile)
		return
	}
	if _, err := exec.LookPath("python3"); err != nil && os.Getenv("SKILLBOX_PYTHON") == "" {
		t.Skip("no python3")
	}
	pidfile := filepath.Join(t.TempDir(), "worker.pid")
	host := exec.Command(os.Args[0], "-test.run=^TestWorkerDiesWithHost$", "-test.count=1")
	host.Env = append(os.Environ(), hostEnv+"="+pidfile)
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	hostDone := make(chan struct{})
	go func() { host.Wait(); close(hostDone) }()
	defer func() { host.Process.Kill(); <-hostDone }()
	var pid int
	for deadline := time.Now().Add(30 * time.Second); pid == 0; {
		b, err := os.ReadFile(pidfile)
		if err == nil {
			pid, _ = strconv.Atoi(string(b))
			break
		}
		select {
		case <-hostDone:
			t.Fatal("the host ended before its call started")
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the call never started")
		}
	}
	start := proctest.StartTime(pid)
	if start == "" {
		t.Fatalf("worker %d is not running", pid)
	}
	host.Process.Signal(syscall.SIGKILL)
	<-hostDone
	// A generous bound against a loaded machine: the kernel sends the
	// signal as the host dies.
	for deadline := time.Now().Add(10 * time.Second); proctest.StartTime(pid) == start; {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("worker %d still runs after its host was killed", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// playHost runs the sleeper skill until this process is killed.
func playHost(t *testing.T, pidfile string) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "skill.py"), []byte(sleeperSkill), 0o644); err != nil {
		t.Fatal(err)
	}
	sb, err := Driver{}.Open(context.Background(), sandbox.Spec{SkillID: "t/sleeper", BundleDir: dir,
		Limits: sandbox.Limits{Timeout: 2 * time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	params, _ := json.Marshal(map[string]string{"pidfile": pidfile})
	sb.Call(context.Background(), sandbox.Request{Params: params})
	t.Fatal("the call returned: its host was to be killed during it")
}
