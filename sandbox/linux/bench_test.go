//go:build linux

package linux

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/internal/cgroup"
	"github.com/skillbox-dev/skillbox/internal/pyinterp"
	"github.com/skillbox-dev/skillbox/internal/worker"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// The benchmarks behind docs/PERFORMANCE.md (scripts/bench prints them as a
// table). Every one runs the same echo skill on the interpreter pyinterp
// resolves ($SKILLBOX_PYTHON, else python3 on PATH), so ratios against
// BenchmarkBarePython compare like with like. Each reports p50, p99 and
// mean latency of the calls themselves.

const echoBody = `        return {"echo": params}`

var echoReq = sandbox.Request{Params: []byte(`{"x":1}`)}

func benchBox(b *testing.B, opts Options, mode sandbox.Mode) sandbox.Sandbox {
	return openBox(b, opts, sandbox.Spec{BundleDir: bundle(b, echoBody), Mode: mode})
}

// latencies collects per-call times and reports them.
type latencies []time.Duration

func (l latencies) report(b *testing.B) {
	if len(l) == 0 {
		return
	}
	slices.Sort(l)
	var sum time.Duration
	for _, d := range l {
		sum += d
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(l[len(l)/2]), "p50-ms")
	b.ReportMetric(ms(l[min(len(l)-1, len(l)*99/100)]), "p99-ms")
	b.ReportMetric(ms(sum/time.Duration(len(l))), "mean-ms")
}

// runBench times b.N sequential calls; pause, if set, runs outside the
// timer before each call.
func runBench(b *testing.B, sb sandbox.Sandbox, pause func()) {
	if _, err := sb.Call(context.Background(), echoReq); err != nil { // warm
		b.Fatal(err)
	}
	lat := make(latencies, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if pause != nil {
			b.StopTimer()
			pause()
			b.StartTimer()
		}
		t0 := time.Now()
		if _, err := sb.Call(context.Background(), echoReq); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	lat.report(b)
}

// BenchmarkBarePython is the baseline: the same harness and skill in single
// mode as a plain subprocess of the same interpreter, no isolation.
func BenchmarkBarePython(b *testing.B) {
	in, err := pyinterp.Resolve(context.Background(), "")
	if err != nil {
		b.Skip(err)
	}
	dir := bundle(b, echoBody)
	lat := make(latencies, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		argv := worker.Argv(in.Command)
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Dir = dir
		cmd.Env = worker.Environ(dir, nil)
		p, err := worker.Start(context.Background(), cmd, 64<<10)
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		if _, err := p.Init(ctx, worker.Init{Bundle: dir, Mode: worker.ModeSingle}); err != nil {
			b.Fatal(err)
		}
		if _, err := p.Call(ctx, 1, echoReq.Params, nil); err != nil {
			b.Fatal(err)
		}
		p.Wait()
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	lat.report(b)
}

// BenchmarkCold starts a new jail and interpreter for every call.
func BenchmarkCold(b *testing.B) { runBench(b, benchBox(b, Options{Exec: ExecCold}, ""), nil) }

// BenchmarkZygote forks each call's child on demand (no pre-fork).
func BenchmarkZygote(b *testing.B) {
	runBench(b, benchBox(b, Options{Exec: ExecZygote, NoPrefork: true}, ""), nil)
}

// BenchmarkSingleUse is the default configuration called back to back: the
// pre-fork of the next child races the next call.
func BenchmarkSingleUse(b *testing.B) { runBench(b, benchBox(b, Options{Exec: ExecZygote}, ""), nil) }

// BenchmarkPreforked finds a child already forked and waiting when the call
// arrives: between calls, outside the timer, it waits for the pre-fork.
func BenchmarkPreforked(b *testing.B) {
	sb := benchBox(b, Options{Exec: ExecZygote}, "")
	runBench(b, sb, func() { waitPreforked(b, sb) })
}

// BenchmarkSession reuses one warm worker (state persists between calls).
func BenchmarkSession(b *testing.B) {
	runBench(b, benchBox(b, Options{}, sandbox.ModeSession), nil)
}

// waitPreforked waits until every idle zygote of sb has a child waiting.
func waitPreforked(b testing.TB, sb sandbox.Sandbox) {
	p, ok := sb.(*box).run.(*pool)
	if !ok {
		b.Fatal("not a zygote pool")
	}
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Microsecond) {
		p.mu.Lock()
		ready := len(p.idle) > 0
		for _, z := range p.idle {
			if !z.mu.TryLock() {
				ready = false
				continue
			}
			ready = ready && z.pre != nil
			z.mu.Unlock()
		}
		p.mu.Unlock()
		if ready {
			return
		}
	}
	b.Fatal("no pre-forked child after 2s")
}

// importSets are the skills of BenchmarkImports: the echo skill with
// nothing more, with a heavy set of standard-library imports, and with a
// third-party import (PyYAML, in the interpreter's site-packages).
var importSets = []struct{ name, imports string }{
	{"stdlib", ""},
	{"heavy-stdlib", "import asyncio, decimal, email.mime.multipart, http.client, urllib.request, " +
		"xml.etree.ElementTree, sqlite3, csv, logging, argparse, dataclasses, typing, datetime, uuid, hashlib"},
	{"third-party", "import yaml"},
}

// BenchmarkImports is single-use with the skill imported in each call's
// child (the default), against warm (imported once in the zygote) and
// against the interpreter's environment trusted (its site and the skill's
// third-party imports pre-imported in the zygote). "prefork" waits between
// calls, outside the timer, for the next child to have imported the skill;
// "back-to-back" does not.
func BenchmarkImports(b *testing.B) {
	in, err := pyinterp.Resolve(context.Background(), "")
	if err != nil {
		b.Skip(err)
	}
	for _, set := range importSets {
		for _, mode := range []string{"default", "trusted-env", "warm"} {
			for _, timing := range []string{"back-to-back", "prefork"} {
				b.Run(set.name+"/"+mode+"/"+timing, func(b *testing.B) {
					spec := sandbox.Spec{BundleDir: bundle(b, echoBody), Warm: mode == "warm"}
					if set.imports != "" {
						src := set.imports + "\n" + skillSrc(echoBody)
						if err := os.WriteFile(filepath.Join(spec.BundleDir, "skill.py"), []byte(src), 0o644); err != nil {
							b.Fatal(err)
						}
					}
					if mode == "trusted-env" {
						spec.TrustedEnvironments = []string{environmentKey(in)}
					}
					sb := openBox(b, Options{Exec: ExecZygote}, spec)
					var pause func()
					if timing == "prefork" {
						pause = func() { waitPreforked(b, sb) }
					}
					runBench(b, sb, pause)
				})
			}
		}
	}
}

// BenchmarkThroughput runs single-use calls from 1, 2, 8 and 32 concurrent
// callers (goroutines) against one Sandbox with the default pool.
func BenchmarkThroughput(b *testing.B) {
	for _, callers := range []int{1, 2, 8, 32} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			sb := benchBox(b, Options{Exec: ExecZygote}, "")
			if _, err := sb.Call(context.Background(), echoReq); err != nil {
				b.Fatal(err)
			}
			var next atomic.Int64
			var mu sync.Mutex
			lat := make(latencies, 0, b.N)
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for range callers {
				wg.Go(func() {
					var mine latencies
					for next.Add(1) <= int64(b.N) {
						t0 := time.Now()
						if _, err := sb.Call(context.Background(), echoReq); err != nil {
							b.Error(err)
							return
						}
						mine = append(mine, time.Since(t0))
					}
					mu.Lock()
					lat = append(lat, mine...)
					mu.Unlock()
				})
			}
			wg.Wait()
			el := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/el.Seconds(), "calls/s")
			lat.report(b)
		})
	}
}

// BenchmarkRSS reports the memory of an idle zygote (its own and its
// pre-forked child's) and of one call in flight, from smaps_rollup: Pss
// shares pages among the processes mapping them, Private is what a process
// alone holds (a forked child's copy-on-write pages it touched).
func BenchmarkRSS(b *testing.B) {
	sb := openBox(b, Options{Exec: ExecZygote}, sandbox.Spec{BundleDir: bundle(b, `        import time
        time.sleep(params.get("sleep", 0))
        return {}`)})
	if _, err := sb.Call(context.Background(), echoReq); err != nil {
		b.Fatal(err)
	}
	waitPreforked(b, sb)
	p := sb.(*box).run.(*pool)
	p.mu.Lock()
	z := p.idle[0]
	p.mu.Unlock()
	zpid := z.j.Cmd.Process.Pid
	zyg := smaps(zpid)
	kids := children(zpid)
	if len(kids) != 1 {
		b.Fatalf("idle zygote has children %v, want its pre-forked one", kids)
	}
	pre := smaps(kids[0])
	done := make(chan error)
	go func() {
		_, err := sb.Call(context.Background(), sandbox.Request{Params: []byte(`{"sleep":0.5}`)})
		done <- err
	}()
	time.Sleep(250 * time.Millisecond)
	busy := smaps(kids[0])
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	mb := func(kb int64) float64 { return float64(kb) / 1024 }
	b.ReportMetric(mb(zyg["Rss"]), "zygote-rss-MB")
	b.ReportMetric(mb(zyg["Pss"]), "zygote-pss-MB")
	b.ReportMetric(mb(pre["Pss"]), "prefork-pss-MB")
	b.ReportMetric(mb(busy["Private_Clean"]+busy["Private_Dirty"]), "call-private-MB")
	b.ReportMetric(mb(busy["Pss"]), "call-pss-MB")
}

// smaps returns the kB fields of /proc/pid/smaps_rollup.
func smaps(pid int) map[string]int64 {
	out := map[string]int64{}
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		out[k] = n
	}
	return out
}

// children lists pid's child processes.
func children(pid int) []int {
	var out []int
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, t := range tasks {
		b, _ := os.ReadFile(t)
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// TestNoLeaks runs many calls in each mode and checks that, after Close,
// the test process holds no more descriptors, children or host mounts than
// before, and no jail cgroup is left. SKILLBOX_LEAK_CALLS sets the number
// of zygote calls (scripts/bench uses 10000); cold and session modes run a
// twentieth of it. Every tenth call leaves a background process behind.
func TestNoLeaks(t *testing.T) {
	requireRoot(t)
	n := 200
	if testing.Short() {
		n = 50
	}
	if s := os.Getenv("SKILLBOX_LEAK_CALLS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			t.Fatalf("SKILLBOX_LEAK_CALLS=%q: %v", s, err)
		}
	}
	// A loopback server the network-granted runs reach through their
	// jails' egress proxies; started before the baseline.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer srv.Close()
	srvPort := srv.Listener.Addr().(*net.TCPAddr).Port
	// With the garbage collector off, a descriptor that only a finalizer
	// would close counts as leaked.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	goroutines := runtime.NumGoroutine
	goBefore := goroutines()
	fds := func() int { e, _ := os.ReadDir("/proc/self/fd"); return len(e) }
	mounts := func() int { b, _ := os.ReadFile("/proc/self/mountinfo"); return strings.Count(string(b), "\n") }
	fdsBefore, mountsBefore := fds(), mounts()
	body := `        import subprocess, urllib.request
        if params.get("bg"):
            subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        if params.get("url"):
            with urllib.request.urlopen(params["url"], timeout=10) as r:
                assert r.read() == b"ok"
        return {}`
	total := 0
	for _, c := range []struct {
		opts  Options
		mode  sandbox.Mode
		calls int
		net   bool
	}{{Options{}, "", n, false}, {Options{NoPrefork: true}, "", max(n/20, 10), false}, {Options{Exec: ExecCold}, "", max(n/20, 10), false},
		{Options{Exec: ExecZygote}, "", max(n/4, 10), false}, {Options{Exec: ExecPrestart}, "", max(n/20, 10), false},
		{Options{}, sandbox.ModeSession, max(n/20, 10), false},
		// With a network grant: every jail has an egress proxy to close.
		{Options{}, "", max(n/4, 10), true}, {Options{Exec: ExecCold}, "", max(n/20, 10), true},
		{Options{}, sandbox.ModeSession, max(n/20, 10), true}} {
		spec := sandbox.Spec{BundleDir: bundle(t, body), Mode: c.mode}
		url := ""
		if c.net {
			spec.Network = []sandbox.HostPort{{Host: "api.test"}}
			spec.Resolve = map[string][]netip.Addr{"api.test": {netip.MustParseAddr("127.0.0.1")}}
			url = fmt.Sprintf("http://api.test:%d/", srvPort)
		}
		sb := openBox(t, c.opts, spec)
		for i := 0; i < c.calls; i++ {
			bg := i%10 == 0 && c.mode != sandbox.ModeSession
			p, _ := json.Marshal(map[string]any{"bg": bg, "url": url})
			if _, err := sb.Call(context.Background(), sandbox.Request{Params: p}); err != nil {
				t.Fatal(err)
			}
		}
		total += c.calls
		sb.Close()
	}
	var fdsAfter, mountsAfter, goAfter int
	var leftCg, kids []string
	h, err := cgroup.Detect()
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		fdsAfter, mountsAfter, goAfter, leftCg, kids = fds(), mounts(), goroutines(), nil, nil
		for _, c := range []string{cgroup.Memory, cgroup.Pids} {
			_, dir := h.Where(c)
			ents, _ := filepath.Glob(filepath.Join(dir, cgroup.Parent, fmt.Sprintf("%d-*", os.Getpid())))
			leftCg = append(leftCg, ents...)
		}
		for _, k := range children(os.Getpid()) {
			kids = append(kids, strconv.Itoa(k))
		}
		if (fdsAfter <= fdsBefore && mountsAfter <= mountsBefore && goAfter <= goBefore && len(leftCg) == 0 && len(kids) == 0) || time.Now().After(deadline) {
			break
		}
	}
	t.Logf("%d calls: descriptors %d -> %d, host mounts %d -> %d, goroutines %d -> %d, jail cgroups left %d, child processes left %d",
		total, fdsBefore, fdsAfter, mountsBefore, mountsAfter, goBefore, goAfter, len(leftCg), len(kids))
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("heap in use with the garbage collector off: %d MiB", ms.HeapAlloc>>20)
	if goAfter > goBefore {
		buf := make([]byte, 1<<20)
		t.Errorf("goroutines: %d before, %d after (egress proxies not closed?)\n%s", goBefore, goAfter, buf[:runtime.Stack(buf, true)])
	}
	if fdsAfter > fdsBefore {
		t.Errorf("descriptors: %d before, %d after", fdsBefore, fdsAfter)
	}
	if mountsAfter > mountsBefore {
		t.Errorf("host mounts: %d before, %d after", mountsBefore, mountsAfter)
	}
	if len(leftCg) > 0 {
		t.Errorf("leftover cgroups: %v", leftCg)
	}
	if len(kids) > 0 {
		t.Errorf("leftover children: %v", kids)
	}
}
