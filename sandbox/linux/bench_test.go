package linux

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/internal/cgroup"
	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/worker"
)

const echoBody = `        return {"echo": params}`

// SKILLBOX_BENCH_PRELOAD=1 imports inspect, json and traceback in the
// skill module: the harness imports inspect per call (in every forked
// child, ~6 ms) unless the zygote already has it. This shows what the
// zygote path costs once the harness preloads its per-call imports.
func benchBox(b *testing.B, opts Options, mode sandbox.Mode) sandbox.Sandbox {
	dir := bundle(b, echoBody)
	if os.Getenv("SKILLBOX_BENCH_PRELOAD") == "1" {
		os.WriteFile(filepath.Join(dir, "skill.py"), []byte("import inspect, json, traceback\n"+skillSrc(echoBody)), 0o644)
	}
	return openBox(b, opts, sandbox.Spec{BundleDir: dir, Mode: mode})
}

// runBench times each call and reports p50/p99 besides ns/op.
func runBench(b *testing.B, sb sandbox.Sandbox) {
	req := sandbox.Request{Params: []byte(`{"x":1}`)}
	sb.Call(context.Background(), req) // warm
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if _, err := sb.Call(context.Background(), req); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

func BenchmarkCold(b *testing.B) { runBench(b, benchBox(b, Options{Exec: ExecCold}, "")) }

// BenchmarkZygote forks each call's child on demand (no pre-fork).
func BenchmarkZygote(b *testing.B) { runBench(b, benchBox(b, Options{NoPrefork: true}, "")) }

// BenchmarkPreforked finds a child already forked when the call arrives
// (the default).
func BenchmarkPreforked(b *testing.B) { runBench(b, benchBox(b, Options{}, "")) }

func BenchmarkSession(b *testing.B) { runBench(b, benchBox(b, Options{}, sandbox.ModeSession)) }

// BenchmarkBarePython is the baseline: the same harness in single mode as
// a plain python3 subprocess, no isolation.
func BenchmarkBarePython(b *testing.B) {
	in, err := ResolveInterp(context.Background(), "")
	if err != nil {
		b.Skip(err)
	}
	dir := bundle(b, echoBody)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		reqR, reqW, _ := os.Pipe()
		repR, repW, _ := os.Pipe()
		argv := worker.Argv(in.Path)
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.ExtraFiles = []*os.File{reqR, repW}
		cmd.Dir = dir
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		reqR.Close()
		repW.Close()
		worker.WriteFrame(reqW, worker.Init{Type: worker.TypeInit, Bundle: dir, Mode: worker.ModeSingle})
		worker.WriteFrame(reqW, worker.Call{Type: worker.TypeCall, ID: 1, Params: []byte(`{"x":1}`)})
		worker.ReadFrame(repR, 1<<20)
		if _, err := worker.ReadFrame(repR, 1<<20); err != nil {
			b.Fatal(err)
		}
		cmd.Wait()
		reqW.Close()
		repR.Close()
	}
}

// BenchmarkParallel measures throughput of single-use calls with 1, 2, 8
// and 32 concurrent callers (calls/s is b.N/elapsed).
func BenchmarkParallel(b *testing.B) {
	for _, callers := range []int{1, 2, 8, 32} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			sb := benchBox(b, Options{}, "")
			req := sandbox.Request{Params: []byte(`{"x":1}`)}
			sb.Call(context.Background(), req)
			b.SetParallelism(max(1, callers/2)) // 2 cores: GOMAXPROCS × this = callers
			start := time.Now()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := sb.Call(context.Background(), req); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
		})
	}
}

// TestNoLeaks runs many calls in each mode and checks that the test
// process holds no more descriptors, and that no jail cgroup or process
// is left, after Close.
func TestNoLeaks(t *testing.T) {
	requireRoot(t)
	n := 200
	if testing.Short() {
		n = 50
	}
	fds := func() int { e, _ := os.ReadDir("/proc/self/fd"); return len(e) }
	before := fds()
	for _, opts := range []Options{{}, {NoPrefork: true}, {Exec: ExecCold}} {
		sb := openBox(t, opts, sandbox.Spec{BundleDir: bundle(t, `        import subprocess
        subprocess.Popen(["/usr/bin/python3.11", "-c", "import time; time.sleep(30)"]) if params.get("bg") else None
        return {}`)})
		for i := 0; i < n; i++ {
			if _, err := call(t, sb, map[string]any{"bg": i%10 == 0}); err != nil {
				t.Fatal(err)
			}
		}
		sb.Close()
	}
	time.Sleep(100 * time.Millisecond)
	if after := fds(); after > before {
		t.Errorf("descriptors: %d before, %d after", before, after)
	}
	h, err := cgroup.Detect()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{cgroup.Memory, cgroup.Pids} {
		_, dir := h.Where(c)
		ents, _ := filepath.Glob(filepath.Join(dir, cgroup.Parent, fmt.Sprintf("%d-*", os.Getpid())))
		if len(ents) > 0 {
			t.Errorf("leftover %s cgroups: %v", c, ents)
		}
	}
	// No child process of ours is left.
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", os.Getpid()))
	for _, f := range tasks {
		if kids, _ := os.ReadFile(f); len(kids) > 0 {
			t.Errorf("leftover children: %s", kids)
		}
	}
}
