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
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/skillbox-dev/skillbox"
	"github.com/skillbox-dev/skillbox/internal/server"
	"github.com/skillbox-dev/skillbox/internal/server/loadtest"
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
	)
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
		if err := serve(ctx, backend, clients, serverLog, copies, release, minIdle); err != nil {
			fmt.Fprintln(os.Stderr, "skillbox-load server:", err)
			os.Exit(1)
		}
		return
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
	if err := run(ctx, backend, url, token, clients, calls, warmup); err != nil {
		fmt.Fprintln(os.Stderr, "skillbox-load:", err)
		os.Exit(1)
	}
}

// serve is the child: a server on a loopback port, printed on stdout;
// with copies > 0 (the memory mode) it also serves that many copies of
// load/echo, with the linux backend's release_after and warm zygotes set.
func serve(ctx context.Context, backend string, slots int, level string, copies int, release time.Duration, minIdle int) error {
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

func run(ctx context.Context, backend, url, token string, clients, calls, warmup int) error {
	pid := 0
	if url == "" {
		var stop func()
		var err error
		if url, pid, stop, err = startServer(ctx, backend, clients, "warn"); err != nil {
			return err
		}
		defer stop()
	}
	if warmup > 0 {
		rep, err := loadtest.Run(ctx, loadtest.Config{URL: url, Token: token, Clients: clients, Calls: warmup})
		if err != nil {
			return err
		}
		if !rep.Clean() {
			return fmt.Errorf("warm-up: %v (first error: %s)", rep, rep.FirstError)
		}
	}
	before := snapshot(pid)
	rep, err := loadtest.Run(ctx, loadtest.Config{URL: url, Token: token, Clients: clients, Calls: calls})
	if err != nil {
		return err
	}
	time.Sleep(500 * time.Millisecond) // let connections and sandboxes settle
	after := snapshot(pid)
	fmt.Printf("backend %s: %v\n", backend, rep)
	if rep.FirstError != "" {
		fmt.Printf("first error: %s\n", rep.FirstError)
	}
	if pid != 0 {
		fmt.Printf("server rss: peak %s, after %s; fds %d -> %d; threads %d -> %d; descendant processes %d -> %d\n",
			mib(after.hwm), mib(after.rss), before.fds, after.fds, before.threads, after.threads, before.children, after.children)
	}
	if !rep.Clean() {
		return fmt.Errorf("not every call was answered once, correctly")
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
