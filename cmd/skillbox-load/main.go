// Command skillbox-load is the serving load test: it starts a skillbox HTTP
// server on loopback in a child process (this binary, re-executed), drives
// concurrent API calls of a trivial skill at it, checks that every call is
// answered exactly once with its own result, and reports latency, calls per
// second, the server's memory, and whether its descriptors, threads or
// sandbox processes grew.
//
//	skillbox-load -backend linux -clients 64 -calls 5000
//	skillbox-load -url http://127.0.0.1:8080 -token T   # an existing server serving load/echo
//
// With -attack batch|trickle|all it attacks the server instead (a big
// JSON-RPC batch on /mcp; many clients trickling large bodies) while
// -clients normal clients keep calling, and reports the server's RSS
// before, during (the highest sample) and after each attack, and how the
// normal calls fared. The server then runs with the default limits.
//
//	skillbox-load -backend linux -attack all -clients 8
//
// With -baseline it also drives, alternately with skillbox round by round
// (-rounds), two Python HTTP servers running the same skill with the same
// interpreter and no sandbox: one calling it in-process, one forking a
// child per call that imports the skill and exits (single-use calls as
// skillbox makes them); it prints each one's calls per second and
// skillbox's ratio to both (issue 17 target 1, throughput).
//
//	skillbox-load -clients 8 -calls 100 -baseline -rounds 3
//	skillbox-load -clients 8 -calls 100 -baseline -rounds 3 -trust-env
//
// -trust-env gives the server a policy trusting the interpreter's
// environment (trusted_environments), so that each call's child does not
// process its site.
//
// The server and the baselines run the interpreter -python
// (/usr/bin/python3 unless given; exported to the server as
// SKILLBOX_PYTHON), not python3 on PATH: a pyenv build there may carry a
// .pth that imports certifi at every start, which each call's child pays.
//
// With -memory N it measures what each loaded skill costs the server
// (proportional set size of the server and its descendants as N skills
// are each called once, then after -release with no call; memory.go).
//
//	skillbox-load -memory 20 -release 20s
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/skillbox-dev/skillbox"
	"github.com/skillbox-dev/skillbox/internal/bench"
	"github.com/skillbox-dev/skillbox/internal/pyinterp"
	"github.com/skillbox-dev/skillbox/internal/server"
	"github.com/skillbox-dev/skillbox/internal/server/loadtest"
	"github.com/skillbox-dev/skillbox/policy"
	_ "github.com/skillbox-dev/skillbox/sandbox/all"
	_ "github.com/skillbox-dev/skillbox/sandbox/linux"
	"github.com/skillbox-dev/skillbox/skill"
)

func main() {
	var (
		backend, url, token string
		clients, calls      int
		serveRole           bool
		warmup              int
		attack, serverLog   string
		atk                 attackConfig
		memSkills, copies   int
		minIdle             int
		release             time.Duration
		baseline, trustEnv  bool
		rounds              int
	)
	flag.BoolVar(&trustEnv, "trust-env", false, "the server's policy trusts the interpreter's environment (trusted_environments), so that a zygote imports its site once instead of each call's child")
	flag.StringVar(&python, "python", "/usr/bin/python3", "the interpreter of the server's calls (exported as SKILLBOX_PYTHON) and of the baselines")
	flag.BoolVar(&baseline, "baseline", false, "also drive an in-process and a fork-per-call Python server (no sandbox), alternately with skillbox")
	flag.IntVar(&rounds, "rounds", 1, "rounds, each driving every server with -clients x -calls")
	flag.IntVar(&memSkills, "memory", 0, "measure memory per loaded skill instead: `N` copies of load/echo, each called once (linux backend)")
	flag.DurationVar(&release, "release", 20*time.Second, "with -memory: the linux backend's release_after")
	flag.IntVar(&minIdle, "min-idle", 1, "with -memory: the linux backend's min_idle (zygotes kept warm per skill)")
	flag.IntVar(&copies, "skills", 0, "internal: copies of load/echo the server serves")
	flag.StringVar(&attack, "attack", "", "attack the server: batch, trickle or all (with -clients normal clients calling meanwhile)")
	flag.DurationVar(&atk.duration, "attack-duration", 40*time.Second, "how long each attack lasts")
	flag.IntVar(&atk.batchAttackers, "batch-attackers", 4, "clients sending JSON-RPC batches")
	flag.IntVar(&atk.batchCalls, "batch-calls", 20000, "tools/call messages per batch")
	flag.IntVar(&atk.trickleClients, "trickle-clients", 150, "clients trickling bodies")
	flag.Int64Var(&atk.trickleSize, "trickle-size", 4<<20, "bytes of each trickled body")
	flag.Int64Var(&atk.trickleRate, "trickle-rate", 128<<10, "bytes per second each trickling client sends")
	flag.StringVar(&backend, "backend", "linux", "backend the server runs calls on")
	flag.StringVar(&url, "url", "", "drive an existing server at `URL` instead of starting one (it must serve load/echo)")
	flag.StringVar(&token, "token", os.Getenv("SKILLBOX_TOKEN"), "bearer token for -url")
	flag.IntVar(&clients, "clients", 64, "concurrent clients")
	flag.IntVar(&calls, "calls", 5000, "calls per client")
	flag.IntVar(&warmup, "warmup", 2, "calls per client before measuring")
	flag.BoolVar(&serveRole, "serve", false, "internal: be the server")
	flag.StringVar(&serverLog, "server-log", "warn", "internal: the server's log level")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if serveRole {
		if err := serve(ctx, backend, clients, serverLog, copies, release, minIdle, trustEnv); err != nil {
			fmt.Fprintln(os.Stderr, "skillbox-load server:", err)
			os.Exit(1)
		}
		return
	}
	if rounds < 1 {
		fmt.Fprintf(os.Stderr, "skillbox-load: -rounds %d: want 1 or more\n", rounds)
		os.Exit(2)
	}
	if (memSkills > 0 || attack != "") && (baseline || trustEnv || rounds != 1) {
		fmt.Fprintln(os.Stderr, "skillbox-load: -baseline, -trust-env and -rounds go with the load test, not with -memory or -attack")
		os.Exit(2)
	}
	if memSkills > 0 {
		if err := runMemory(ctx, memSkills, release, minIdle); err != nil {
			fmt.Fprintln(os.Stderr, "skillbox-load:", err)
			os.Exit(1)
		}
		return
	}
	if attack != "" {
		if err := runAttacks(ctx, backend, attack, clients, atk); err != nil {
			fmt.Fprintln(os.Stderr, "skillbox-load:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(ctx, backend, url, token, clients, calls, warmup, rounds, baseline, trustEnv); err != nil {
		fmt.Fprintln(os.Stderr, "skillbox-load:", err)
		os.Exit(1)
	}
}

// serve is the child: a server on a loopback port, printed on stdout;
// with copies > 0 (the memory mode) it also serves that many copies of
// load/echo, with the linux backend's release_after and warm zygotes set.
func serve(ctx context.Context, backend string, slots int, level string, copies int, release time.Duration, minIdle int, trustEnv bool) error {
	dir, err := os.MkdirTemp("", "skillbox-load-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	root, err := loadtest.WriteSkills(dir)
	if err != nil {
		return err
	}
	opts := []skillbox.Option{skillbox.WithRoots(skill.Root{Path: root, Tier: skill.TierExternal}), skillbox.WithBackend(backend)}
	if copies > 0 {
		if err := writeCopies(root, copies); err != nil {
			return err
		}
		pol, err := memoryPolicy(release, minIdle)
		if err != nil {
			return err
		}
		opts = append(opts, skillbox.WithPolicy(pol))
	}
	if trustEnv {
		pol, err := trustPolicy(ctx)
		if err != nil {
			return err
		}
		opts = append(opts, skillbox.WithPolicy(pol))
	}
	rt, err := skillbox.New(opts...)
	if err != nil {
		return err
	}
	defer rt.Close()
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
	s, err := server.New(rt, server.Config{
		Call:          skillbox.CallOptions{Backend: backend, TrustRemoteCode: true},
		MaxConcurrent: slots, Logger: log,
	})
	if err != nil {
		return err
	}
	ln, err := s.Listen("127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().String())
	return s.Serve(ctx, ln)
}

// python is the interpreter of the server's calls and of the baselines.
var python string

// startServer starts this binary as a server child with slots call slots
// (0: the default) and returns its URL, its pid and a func that stops it.
func startServer(ctx context.Context, backend string, slots int, logLevel string) (string, int, func(), error) {
	return startServerWith(ctx, backend, slots, logLevel)
}

// startServerWith is startServer with more arguments for the child.
func startServerWith(ctx context.Context, backend string, slots int, logLevel string, extra ...string) (string, int, func(), error) {
	self, err := os.Executable()
	if err != nil {
		return "", 0, nil, err
	}
	args := append([]string{"-serve", "-backend", backend, "-clients", strconv.Itoa(slots), "-server-log", logLevel}, extra...)
	cmd := exec.CommandContext(ctx, self, args...)
	cmd.Env = append(os.Environ(), "SKILLBOX_PYTHON="+python)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", 0, nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", 0, nil, err
	}
	stop := func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		stop()
		return "", 0, nil, fmt.Errorf("server did not start: %v", err)
	}
	return "http://" + strings.TrimSpace(line), cmd.Process.Pid, stop, nil
}

// target is one server the load test drives, and its reports.
type target struct {
	name string
	cfg  loadtest.Config
	reps []*loadtest.Report
	cpu  []float64 // the machine's busy CPU time per call in each round, in ms
}

func run(ctx context.Context, backend, url, token string, clients, calls, warmup, rounds int, baseline, trustEnv bool) error {
	pid := 0
	name := "skillbox, backend " + backend
	if url == "" {
		var stop func()
		var err error
		var extra []string
		if trustEnv {
			extra = append(extra, "-trust-env")
			name += ", environment trusted"
		}
		if url, pid, stop, err = startServerWith(ctx, backend, clients, "warn", extra...); err != nil {
			return err
		}
		defer stop()
		fmt.Printf("interpreter: %s\n", python)
	} else if trustEnv {
		return fmt.Errorf("-trust-env sets the policy of the server this command starts; with -url, set trusted_environments in that server's policy file")
	}
	sb := &target{name: name, cfg: loadtest.Config{URL: url, Token: token, Clients: clients}}
	targets := []*target{sb}
	if baseline {
		bases, stop, err := startBaselines(clients)
		if err != nil {
			return err
		}
		defer stop()
		targets = append(bases, sb)
	}
	for _, t := range targets {
		if warmup > 0 {
			rep, err := t.drive(ctx, warmup)
			if err != nil {
				return err
			}
			if !rep.Clean() {
				return fmt.Errorf("%s: warm-up: %v (first error: %s)", t.name, rep, rep.FirstError)
			}
		}
	}
	// Count what the server holds once the warm-up's sandboxes have been
	// replaced, as after the run: a count taken while a pool refills is
	// short by the processes still starting.
	time.Sleep(500 * time.Millisecond)
	before := snapshot(pid)
	for r := range rounds {
		// Alternate the order round by round, so that no server always
		// follows the same one.
		for i := range targets {
			t := targets[(i+r)%len(targets)]
			busy := busyTime()
			rep, err := t.drive(ctx, calls)
			if err != nil {
				return err
			}
			cpu := float64((busyTime() - busy).Microseconds()) / 1000 / float64(max(rep.OK, 1))
			t.reps, t.cpu = append(t.reps, rep), append(t.cpu, cpu)
			if len(targets) > 1 || rounds > 1 {
				fmt.Printf("round %d, %s: %.0f calls/s, p50 %v, %.2f ms CPU per call\n", r+1, t.name, rep.CallsPerSecond, rep.P50.Round(10*time.Microsecond), cpu)
			}
		}
	}
	time.Sleep(500 * time.Millisecond) // let connections and sandboxes settle
	after := snapshot(pid)
	for _, rep := range sb.reps {
		fmt.Printf("backend %s: %v\n", backend, rep)
		if rep.FirstError != "" {
			fmt.Printf("first error: %s\n", rep.FirstError)
		}
	}
	if pid != 0 {
		fmt.Printf("server rss: peak %s, after %s; fds %d -> %d; threads %d -> %d; descendant processes %d -> %d\n",
			mib(after.hwm), mib(after.rss), before.fds, after.fds, before.threads, after.threads, before.children, after.children)
	}
	if baseline {
		printBaselines(targets, sb)
	}
	for _, t := range targets {
		for _, rep := range t.reps {
			if !rep.Clean() {
				return fmt.Errorf("%s: not every call was answered once, correctly (%v)", t.name, rep)
			}
		}
	}
	// Pools keep a few pre-forked sandboxes, so their number may differ by
	// one or two, and exec: auto may have moved from a spare jail to a
	// zygote and its pre-forked child, which hold a few more descriptors;
	// a leak grows with the calls.
	if pid != 0 && (after.fds > before.fds+clients+4 || after.children > before.children+2) {
		return fmt.Errorf("the server leaked descriptors or processes")
	}
	return nil
}

// trustPolicy is a policy whose trusted_environments lists the
// environment of the interpreter the server's calls run (SKILLBOX_PYTHON):
// its key is "python:" and the command the backend runs, as `skillbox
// doctor` shows it.
func trustPolicy(ctx context.Context) (*policy.Policy, error) {
	in, err := pyinterp.Resolve(ctx, pyinterp.Default())
	if err != nil {
		return nil, err
	}
	return policy.Parse("trust-env", []byte("trusted_environments:\n  - "+strconv.Quote("python:"+in.Command)+"\n"))
}

// drive runs calls calls per client against t.
func (t *target) drive(ctx context.Context, calls int) (*loadtest.Report, error) {
	cfg := t.cfg
	cfg.Calls = calls
	rep, err := loadtest.Run(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", t.name, err)
	}
	return rep, nil
}

// startBaselines starts the two Python servers of -baseline on a copy of
// load/echo.
func startBaselines(clients int) ([]*target, func(), error) {
	dir, err := os.MkdirTemp("", "skillbox-load-base-")
	if err != nil {
		return nil, nil, err
	}
	root, err := loadtest.WriteSkills(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	py := bench.Python{Exe: python, Dir: filepath.Join(root, filepath.FromSlash(loadtest.Skill))}
	var stops []func() error
	stop := func() {
		for _, s := range stops {
			s()
		}
		os.RemoveAll(dir)
	}
	var out []*target
	for _, b := range []struct {
		fork bool
		name string
	}{{false, "Python server, skill in-process"}, {true, "Python server, a forked child per call"}} {
		url, _, s, err := py.StartHTTP(b.fork)
		if err != nil {
			stop()
			return nil, nil, err
		}
		stops = append(stops, s)
		out = append(out, &target{name: b.name, cfg: loadtest.Config{URL: url, Clients: clients, Bare: true}})
	}
	return out, stop, nil
}

// printBaselines prints each server's median calls per second, p50 and
// CPU per call over the rounds, and skillbox's ratio to each baseline.
func printBaselines(targets []*target, sb *target) {
	med := func(v []float64) float64 {
		v = slices.Clone(v)
		slices.Sort(v)
		if n := len(v); n%2 == 0 {
			return (v[n/2-1] + v[n/2]) / 2
		}
		return v[len(v)/2]
	}
	of := func(t *target, f func(*loadtest.Report) float64) float64 {
		v := make([]float64, len(t.reps))
		for i, r := range t.reps {
			v[i] = f(r)
		}
		return med(v)
	}
	rate := func(r *loadtest.Report) float64 { return r.CallsPerSecond }
	p50 := func(r *loadtest.Report) float64 { return float64(r.P50.Microseconds()) / 1000 }
	fmt.Printf("\n%-48s %9s %9s %14s %18s\n", "median over the rounds", "calls/s", "p50 ms", "CPU ms/call", "skillbox calls/s")
	for _, t := range targets {
		ratio := ""
		if t != sb {
			ratio = fmt.Sprintf("%.2fx", of(sb, rate)/of(t, rate))
		}
		fmt.Printf("%-48s %9.0f %9.2f %14.2f %18s\n", t.name, of(t, rate), of(t, p50), med(t.cpu), ratio)
	}
	fmt.Println("(CPU: the whole machine's busy time over the round, load client included, per call)")
}

// busyTime is the machine's CPU time spent so far in user and system
// mode and interrupts (/proc/stat; not idle, I/O wait or time stolen by
// the hypervisor); 0 where there is none.
func busyTime() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return 0
	}
	var busy int64
	for _, i := range []int{1, 2, 3, 6, 7} { // user, nice, system, irq, softirq
		if i < len(f) {
			n, _ := strconv.ParseInt(f[i], 10, 64)
			busy += n
		}
	}
	return time.Duration(busy) * time.Second / 100 // USER_HZ
}

type procStats struct {
	rss, hwm               int64
	fds, threads, children int
}

// snapshot reads pid's memory, descriptors, threads and descendants.
func snapshot(pid int) procStats {
	var s procStats
	if pid == 0 {
		return s
	}
	st := procFields(fmt.Sprintf("/proc/%d/status", pid))
	s.rss, s.hwm, s.threads = st["VmRSS"]<<10, st["VmHWM"]<<10, int(st["Threads"])
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		s.fds = len(ents)
	}
	s.children = descendants(pid)
	return s
}

// procFields reads a /proc file of "Name: number [kB]" lines (status,
// smaps_rollup) into a map; numbers as written (kB for sizes).
func procFields(path string) map[string]int64 {
	m := map[string]int64{}
	b, err := os.ReadFile(path)
	if err != nil {
		return m
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && strings.HasSuffix(f[0], ":") {
			if n, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				m[strings.TrimSuffix(f[0], ":")] = n
			}
		}
	}
	return m
}

// descendants counts the processes below pid.
func descendants(pid int) int { return len(descendantPIDs(pid)) }

// descendantPIDs lists the processes below pid.
func descendantPIDs(pid int) []int {
	parent := map[int]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The parent pid is the second field after the parenthesised name.
		i := strings.LastIndexByte(string(b), ')')
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 1 {
			parent[p], _ = strconv.Atoi(f[1])
		}
	}
	var below []int
	for p := range parent {
		for q := parent[p]; q > 1; q = parent[q] {
			if q == pid {
				below = append(below, p)
				break
			}
		}
	}
	return below
}

func mib(n int64) string { return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20)) }
