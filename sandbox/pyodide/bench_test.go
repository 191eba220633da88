//go:build unix

package pyodide

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/internal/bench"
	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/sandbox/sandboxtest"
)

func benchDriver(b *testing.B) *Driver { return benchDriverWith(b, Options{}) }

func benchDriverWith(b *testing.B, o Options) *Driver {
	d := New(o)
	if c := d.Probe(context.Background()); !c.Available {
		b.Skipf("pyodide backend unavailable: %s", c.Reason)
	}
	return d
}

func benchSpec(b *testing.B) sandbox.Spec { return benchSpecTB(b) }

func benchSpecTB(b testing.TB) sandbox.Spec {
	return sandboxtest.SpecFor(sandboxtest.FunctionalSkill(b, "hello"), sandboxtest.Options{Limits: sandbox.Limits{Timeout: 30 * time.Second}})
}

// BenchmarkColdStart measures Open: a new Deno worker restored from the
// memory snapshot, with the bundle copied in and the skill imported.
func BenchmarkColdStart(b *testing.B) {
	d := benchDriver(b)
	spec := benchSpec(b)
	if sb, err := d.Open(context.Background(), spec); err == nil { // snapshot, code cache
		sb.Close()
	}
	b.ResetTimer()
	for range b.N {
		sb, err := d.Open(context.Background(), spec)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		sb.Close()
		b.StartTimer()
	}
}

// BenchmarkWarmCall measures a single-use call served by a pre-started
// worker (the pool is refilled, untimed, between calls); it reports the
// median and the worker's resident memory. A host is armed (its call
// worker has imported the skill) when it is back in idle, but it then
// starts the Web Worker for the call after next, which takes a core for
// a few hundred ms; the benchmark lets that settle (warmSettle, untimed)
// so that the call measured is one that finds everything started, as a
// call spaced from the previous one does. BenchmarkBackToBack times the
// other case.
// warmSettle is how long BenchmarkWarmCall waits, untimed, for a host's
// next Web Worker to start before timing a call.
const warmSettle = 2 * time.Second

func BenchmarkWarmCall(b *testing.B) {
	for _, idle := range []int{1, 2} {
		b.Run(fmt.Sprintf("idle=%d", idle), func(b *testing.B) { warmCall(b, idle) })
	}
}

func warmCall(b *testing.B, idle int) {
	d := benchDriverWith(b, Options{Idle: idle})
	sb, err := d.Open(context.Background(), benchSpec(b))
	if err != nil {
		b.Fatal(err)
	}
	defer sb.Close()
	bx := sb.(*box)
	var times []time.Duration
	var rss []int64
	params := json.RawMessage(`{}`)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		for len(bx.idle) == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(warmSettle)
		// The host is idle now: its next Web Worker has started.
		p := <-bx.idle
		rss = append(rss, vmRSS(p.Cmd.Process.Pid))
		bx.idle <- p
		b.StartTimer()
		start := time.Now()
		if _, err := sb.Call(context.Background(), sandbox.Request{Params: params}); err != nil {
			b.Fatal(err)
		}
		times = append(times, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(times[len(times)*9/10].Microseconds())/1000, "p90-ms")
	sort.Slice(rss, func(i, j int) bool { return rss[i] < rss[j] })
	b.ReportMetric(float64(rss[len(rss)/2])/(1<<20), "idle-worker-RSS-MiB")
}

// BenchmarkSessionCall measures a call on a session worker (reused; not
// single-use), for comparison.
func BenchmarkSessionCall(b *testing.B) {
	d := benchDriver(b)
	spec := benchSpec(b)
	spec.Mode = sandbox.ModeSession
	sb, err := d.Open(context.Background(), spec)
	if err != nil {
		b.Fatal(err)
	}
	defer sb.Close()
	params := json.RawMessage(`{}`)
	b.ResetTimer()
	for range b.N {
		if _, err := sb.Call(context.Background(), sandbox.Request{Params: params}); err != nil {
			b.Fatal(err)
		}
	}
}

// vmRSS is the resident memory of pid in bytes (Linux; 0 elsewhere).
func vmRSS(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// BenchmarkBackToBack measures sustained single-use calls: each call is
// issued as soon as the previous one returned (clients=1), or by 8
// clients at once, with nothing pre-warmed between calls, after 3 calls
// per client untimed (for 8 clients these start the box's host
// processes, so a run times sustained load, not the hosts' start). It
// reports the median and 90th percentile latency, the calls per second
// over the whole run, and the CPU time per call of this process and
// everything below it (the hosts, their Web Worker threads and V8's
// background threads, hosts retired meanwhile included). That CPU sets a
// ceiling no scheduling beats: cpu-bound-calls/s is the calls per second
// the machine's cores (runtime.NumCPU) would serve if they did nothing
// else.
func BenchmarkBackToBack(b *testing.B) {
	// idle is the host's started Web Workers (the policy file's idle):
	// idle 2 shows what a second started worker buys, at its memory
	// (BenchmarkWarmCall's idle RSS with the same setting).
	for _, c := range []struct{ clients, idle int }{{1, 1}, {1, 2}, {8, 1}, {8, 2}} {
		clients := c.clients
		b.Run(fmt.Sprintf("clients=%d/idle=%d", clients, c.idle), func(b *testing.B) {
			d := benchDriverWith(b, Options{Idle: c.idle})
			sb, err := d.Open(context.Background(), benchSpec(b))
			if err != nil {
				b.Fatal(err)
			}
			defer sb.Close()
			params := json.RawMessage(`{}`)
			call := func() time.Duration {
				start := time.Now()
				if _, err := sb.Call(context.Background(), sandbox.Request{Params: params}); err != nil {
					b.Error(err)
				}
				return time.Since(start)
			}
			var mu sync.Mutex
			var times []time.Duration
			// drive makes n calls from the clients, each issued as soon as
			// one of them is free.
			drive := func(n int, record bool) {
				next := make(chan struct{})
				var wg sync.WaitGroup
				for range clients {
					wg.Go(func() {
						for range next {
							t := call()
							if record {
								mu.Lock()
								times = append(times, t)
								mu.Unlock()
							}
						}
					})
				}
				for range n {
					next <- struct{}{}
				}
				close(next)
				wg.Wait()
			}
			// Untimed, as the same clients: the host processes a burst of
			// this many clients starts (up to max_workers) are running
			// before the timer starts, so what is timed is sustained load.
			drive(3*clients, false)
			cpu0 := bench.TreeCPU(os.Getpid()) // a walk of /proc: outside the timer
			b.ResetTimer()
			begun := time.Now()
			drive(b.N, true)
			total := time.Since(begun)
			b.StopTimer()
			cpu := bench.TreeCPU(os.Getpid()) - cpu0
			sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
			b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(times[len(times)*9/10].Microseconds())/1000, "p90-ms")
			b.ReportMetric(float64(len(times))/total.Seconds(), "calls/s")
			if cpu > 0 {
				perCall := cpu.Seconds() / float64(len(times))
				b.ReportMetric(perCall*1000, "cpu-ms/call")
				b.ReportMetric(float64(runtime.NumCPU())/perCall, "cpu-bound-calls/s")
			}
		})
	}
}
