package cli

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/internal/proctest"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// TestRunKilledTakesSandboxAlong: `skillbox run` killed with SIGKILL (as a
// client's hard timeout does) leaves no process of its sandbox running:
// the linux backend's jail and gVisor's runsc die with it. Before, the
// jail (whose init stage changed ids, clearing its parent-death signal)
// and runsc (which had none) ran on, re-parented to init.
func TestRunKilledTakesSandboxAlong(t *testing.T) {
	// The kill must come during the call: before it, the harness ends by
	// itself on the end of its protocol pipe.
	for _, tc := range []struct {
		backend string
		// running says a descendant (pid, command line) shows the sandbox
		// runs; settle is how long the call then takes to begin.
		running func(pid int, cmdline string) bool
		settle  time.Duration
	}{
		// The harness runs the call on its main thread: the skill's sleep
		// shows as that thread's wait channel.
		{"linux", func(pid int, c string) bool {
			return strings.HasSuffix(c, "skillbox-worker") && strings.Contains(wchan(pid), "nanosleep")
		}, 0},
		// gVisor hides the harness from the host: give it time to load.
		{"gvisor", func(_ int, c string) bool { return strings.HasPrefix(c, "runsc-sandbox") }, 5 * time.Second},
	} {
		t.Run(tc.backend, func(t *testing.T) {
			d, err := sandbox.Lookup(tc.backend)
			if err != nil {
				t.Skipf("%s backend not registered: %v", tc.backend, err)
			}
			if c := d.Probe(context.Background()); !c.Available {
				t.Skipf("%s backend unavailable on this host: %s", tc.backend, c.Reason)
			}
			h := newHarness(t)
			exe, env := h.selfAsSkillbox()
			cmd := exec.Command(exe, "run", "test/sleeper", "--backend", tc.backend, "--timeout", "5m")
			// What a killed skillbox leaves in its temporary folder (runsc's
			// state) goes with the test's.
			cmd.Env = append(env, "TMPDIR="+t.TempDir())
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				cmd.Process.Kill()
				cmd.Wait()
			}()
			var procs map[int]string
			for deadline := time.Now().Add(2 * time.Minute); ; {
				procs = descendants(cmd.Process.Pid)
				if anyCmdline(procs, tc.running) {
					time.Sleep(tc.settle)
					procs = descendants(cmd.Process.Pid)
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no sandbox started within 2 minutes; descendants %v; stderr: %s", procs, stderr.String())
				}
				time.Sleep(50 * time.Millisecond)
			}
			// Ours from here on: kill what is left when the test fails.
			defer func() {
				for pid, start := range procs {
					if proctest.StartTime(pid) == start {
						syscall.Kill(pid, syscall.SIGKILL)
					}
				}
			}()
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
			for deadline := time.Now().Add(10 * time.Second); ; {
				var left []int
				for pid, start := range procs {
					if proctest.StartTime(pid) == start {
						left = append(left, pid)
					}
				}
				if len(left) == 0 {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("10 s after skillbox was killed, its sandbox's processes %v still run", left)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

// descendants maps the pids of root's descendants (threads excluded) to
// their start times, which tell them from a later process given the pid.
func descendants(root int) map[int]string {
	parent := map[int]int{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
		if fs := statFields(b); len(fs) > 1 {
			parent[pid], _ = strconv.Atoi(fs[1])
		}
	}
	out := map[int]string{}
	var walk func(int)
	walk = func(p int) {
		for pid, pp := range parent {
			if pp == p {
				if _, seen := out[pid]; !seen {
					out[pid] = proctest.StartTime(pid)
					walk(pid)
				}
			}
		}
	}
	walk(root)
	return out
}

// statFields are the fields of /proc/PID/stat after the command name
// (state, ppid, ...).
func statFields(b []byte) []string {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

// wchan is where pid's main thread waits in the kernel.
func wchan(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/wchan")
	return string(b)
}

// anyCmdline says whether one of procs has a command line (arguments
// joined by spaces) that match accepts, with its pid.
func anyCmdline(procs map[int]string, match func(int, string) bool) bool {
	for pid := range procs {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if err == nil && match(pid, strings.TrimRight(strings.ReplaceAll(string(b), "\x00", " "), " ")) {
			return true
		}
	}
	return false
}
