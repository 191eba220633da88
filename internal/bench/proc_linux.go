package bench

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// subreaper makes this process the reaper of its orphaned descendants, so
// that the CPU time of a sandbox whose wrapper exits without waiting for
// it (bubblewrap's monitor leaves the sandbox's init to be reparented) is
// still counted: orphans reaps it.
func subreaper() error { return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) }

// clockTick is USER_HZ, the unit of /proc/PID/stat's start time: 100 on
// every Linux architecture Go supports.
const clockTick = 100

// uptimeTicks is the time since boot in clock ticks (0 if unknown).
func uptimeTicks() int64 {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	s, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 0
	}
	return int64(s * clockTick)
}

// orphansCPU reaps this process's children that started at or after since
// (uptimeTicks, so a server started before the run is never one) — the
// orphans of the process just measured, reparented here — and returns
// their CPU time, their own reaped descendants included. An orphan that
// does not end within a second is left alone.
func orphansCPU(since int64) time.Duration {
	if since == 0 {
		return 0
	}
	var total time.Duration
	deadline := time.Now().Add(time.Second)
	for _, pid := range children() {
		start, ok := startTicks(pid)
		if !ok || start+1 < since {
			continue
		}
		for {
			var ru syscall.Rusage
			var ws syscall.WaitStatus
			got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, &ru)
			if err != nil {
				break
			}
			if got == pid {
				total += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
				break
			}
			if time.Now().After(deadline) {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	return total
}

// children lists this process's child processes.
func children() []int {
	paths, _ := filepath.Glob("/proc/self/task/*/children")
	var pids []int
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// startTicks is pid's start time since boot in clock ticks.
func startTicks(pid int) (int64, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// Fields after the parenthesised name; starttime is the 22nd field of
	// the line, the 20th after the name.
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 20 {
		return 0, false
	}
	n, err := strconv.ParseInt(f[19], 10, 64)
	return n, err == nil
}

// ownSession starts cmd in a session of its own. With the kernel's
// autogroup scheduling (sched_autogroup_enabled) each session gets an even
// share of the CPU, so on a loaded machine a process that calls setsid
// itself (bubblewrap --new-session) would run faster than one that does
// not; giving every measured process and server its own session evens
// that out.
func ownSession(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setsid = true
}

// treeCPU is the CPU time (user and system) that pid and every process
// below it have used, the children they reaped included; 0 if pid is gone.
// Precision is the clock tick (10 ms): compare sums over many calls.
func treeCPU(pid int) time.Duration {
	type proc struct {
		ppid  int
		ticks int64
	}
	procs := map[int]proc{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// After the parenthesised name: ppid is the 2nd field, utime,
		// stime, cutime and cstime the 12th to 15th.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 15 {
			continue
		}
		var pr proc
		pr.ppid, _ = strconv.Atoi(f[1])
		for _, s := range f[11:15] {
			n, _ := strconv.ParseInt(s, 10, 64)
			pr.ticks += n
		}
		procs[p] = pr
	}
	if _, ok := procs[pid]; !ok {
		return 0
	}
	var ticks int64
	for p, pr := range procs {
		for q := p; q > 0; q = procs[q].ppid {
			if q == pid {
				ticks += pr.ticks
				break
			}
			if _, ok := procs[q]; !ok {
				break
			}
		}
	}
	return time.Duration(ticks) * time.Second / clockTick
}
