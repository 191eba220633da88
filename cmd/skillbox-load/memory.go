package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/skillbox-dev/skillbox/internal/server/loadtest"
	"github.com/skillbox-dev/skillbox/policy"
)

// The memory mode (issue 17 target 4): what each loaded skill costs a
// server. The server child serves n copies of load/echo (load/echo1 ...
// load/echoN, each its own sandbox); each is called once, and after each
// call the proportional set size (PSS: shared pages divided among the
// processes sharing them) of the server and all its descendants is
// summed from /proc/PID/smaps_rollup. Then nothing is called for the
// backend's release_after plus a margin, the sum is read again, and one
// more call of a skill measures the warm-up that follows.

// memoryPolicy is the server's policy file for the memory mode: the linux
// backend's release_after and warm zygotes as given.
func memoryPolicy(release time.Duration, minIdle int) (*policy.Policy, error) {
	return policy.Parse("memory-mode", []byte(fmt.Sprintf(
		"backends:\n  linux:\n    release_after: %s\n    min_idle: %d\n", release, minIdle)))
}

// writeCopies adds n copies of load/echo to the load test's skills root.
func writeCopies(root string, n int) error {
	src := filepath.Join(root, "load", "echo")
	files, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for i := 1; i <= n; i++ {
		dst := filepath.Join(root, "load", fmt.Sprintf("echo%d", i))
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return err
		}
		for _, f := range files {
			b, err := os.ReadFile(filepath.Join(src, f.Name()))
			if err != nil {
				return err
			}
			if f.Name() == "manifest.yaml" {
				b = []byte(strings.Replace(string(b), "name: echo\n", fmt.Sprintf("name: echo%d\n", i), 1))
			}
			if err := os.WriteFile(filepath.Join(dst, f.Name()), b, 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

// pss is a sum of smaps_rollup's proportional set sizes, in bytes.
type pss struct{ total, anon, file, shmem int64 }

// treePSS sums the PSS of pid and its descendants and counts the
// processes.
func treePSS(pid int) (pss, int) {
	var s pss
	procs := append([]int{pid}, descendantPIDs(pid)...)
	for _, p := range procs {
		f := procFields(fmt.Sprintf("/proc/%d/smaps_rollup", p))
		s.total += f["Pss"] << 10
		s.anon += f["Pss_Anon"] << 10
		s.file += f["Pss_File"] << 10
		s.shmem += f["Pss_Shmem"] << 10
	}
	return s, len(procs)
}

// row prints one line of the memory table: the tree's PSS, its parts, and
// what it grew by since base, per skill.
func row(label string, p, base pss, procs, skills int) {
	per := ""
	if skills > 0 {
		per = fmt.Sprintf("%.2f MiB", float64(p.total-base.total)/float64(skills)/(1<<20))
	}
	fmt.Printf("| %s | %.1f | %.1f | %.1f | %.1f | %d | %s |\n", label, mb(p.total), mb(p.anon), mb(p.file), mb(p.shmem), procs, per)
}

func mb(n int64) float64 { return float64(n) / (1 << 20) }

func runMemory(ctx context.Context, skills int, release time.Duration, minIdle int) error {
	url, pid, stop, err := startServerWith(ctx, "linux", 0, "warn",
		"-skills", strconv.Itoa(skills), "-release", release.String(), "-min-idle", strconv.Itoa(minIdle))
	if err != nil {
		return err
	}
	defer stop()
	call := func(name string) (time.Duration, error) {
		start := time.Now()
		rep, err := loadtest.Run(ctx, loadtest.Config{URL: url, Clients: 1, Calls: 1, Skill: name})
		if err != nil {
			return 0, err
		}
		if !rep.Clean() {
			return 0, fmt.Errorf("call of %s: %s", name, rep.FirstError)
		}
		return time.Since(start), nil
	}
	settle := func() { time.Sleep(300 * time.Millisecond) } // the next child forks and imports
	base, nbase := treePSS(pid)
	fmt.Printf("memory mode: %d skills, linux release_after %s, min_idle %d; load %s\n\n", skills, release, minIdle, loadavg())
	fmt.Println("| after | PSS MiB | anon | file | shmem | processes | PSS per skill |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|")
	row("the server, nothing called", base, base, nbase, 0)
	var first time.Duration
	for i := 1; i <= skills; i++ {
		d, err := call(fmt.Sprintf("load/echo%d", i))
		if err != nil {
			return err
		}
		if i == 1 {
			first = d
		}
		settle()
		if i == 1 || i == skills/2 || i == skills {
			p, n := treePSS(pid)
			row(fmt.Sprintf("%d skills called once", i), p, base, n, i)
		}
	}
	warm, err := call("load/echo1")
	if err != nil {
		return err
	}
	quiet := release + 3*time.Second // the reaper looks every second at most
	time.Sleep(quiet)
	p, n := treePSS(pid)
	row(fmt.Sprintf("nothing called for %s", quiet), p, base, n, skills)
	after, err := call("load/echo1")
	if err != nil {
		return err
	}
	fmt.Printf("\nOne call (client to reply): first of a skill %.1f ms, again warm %.1f ms, after the release %.1f ms\n",
		ms(first), ms(warm), ms(after))
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}
