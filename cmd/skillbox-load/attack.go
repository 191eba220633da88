package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/skillbox-dev/skillbox/internal/server/loadtest"
)

type attackConfig struct {
	duration                   time.Duration
	batchAttackers, batchCalls int
	trickleClients             int
	trickleSize, trickleRate   int64
}

// runAttacks starts a server with the default limits and runs each attack
// named by which against it while clients normal clients keep calling,
// sampling the server's RSS throughout.
func runAttacks(ctx context.Context, backend, which string, clients int, cfg attackConfig) error {
	var attacks []string
	switch which {
	case "all":
		attacks = []string{"batch", "trickle"}
	case "batch", "trickle":
		attacks = []string{which}
	default:
		return fmt.Errorf("-attack %q: want batch, trickle or all", which)
	}
	url, pid, stop, err := startServer(ctx, backend, 0, "error")
	if err != nil {
		return err
	}
	defer stop()
	if rep, err := loadtest.Run(ctx, loadtest.Config{URL: url, Clients: clients, Calls: 5}); err != nil || !rep.Clean() {
		return fmt.Errorf("warm-up: %v %v", rep, err)
	}
	time.Sleep(time.Second)
	fmt.Printf("server: backend %s, default limits; normal load: %d clients calling %s one call after another\n", backend, clients, loadtest.Skill)
	for _, name := range attacks {
		before := snapshot(pid)
		actx, cancel := context.WithTimeout(ctx, cfg.duration)
		// Sample the RSS while the attack runs.
		var peak int64
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			t := time.NewTicker(50 * time.Millisecond)
			defer t.Stop()
			for {
				if s := snapshot(pid); s.rss > peak {
					peak = s.rss
				}
				select {
				case <-actx.Done():
					return
				case <-t.C:
				}
			}
		}()
		var (
			wg     sync.WaitGroup
			attack string
			normal = &loadtest.Report{Status: map[int]int{}}
		)
		wg.Go(func() {
			switch name {
			case "batch":
				rep, err := loadtest.BatchAttack(actx, url, "", cfg.batchAttackers, cfg.batchCalls)
				attack = fmt.Sprintf("%d attackers sending batches of %d tools/call: %v", cfg.batchAttackers, cfg.batchCalls, rep)
				if err != nil {
					attack += fmt.Sprintf(" (error: %v)", err)
				}
				if rep.FirstBody != "" {
					attack += "\n  first answer: " + strings.TrimSpace(rep.FirstBody)
				}
			case "trickle":
				rep := loadtest.TrickleAttack(actx, strings.TrimPrefix(url, "http://"), "", cfg.trickleClients, cfg.trickleSize, cfg.trickleRate)
				attack = fmt.Sprintf("%d clients trickling %s bodies at %s/s: %v", cfg.trickleClients, mib(cfg.trickleSize), kib(cfg.trickleRate), rep)
			}
		})
		// Normal clients call meanwhile, a round of 10 calls at a time,
		// so a round never outlasts the attack by much.
		wg.Go(func() {
			time.Sleep(500 * time.Millisecond) // let the attack take hold
			for actx.Err() == nil {
				rep, _ := loadtest.Run(ctx, loadtest.Config{URL: url, Clients: clients, Calls: 10})
				if rep == nil {
					return
				}
				normal.Sent += rep.Sent
				normal.OK += rep.OK
				normal.Lost += rep.Lost
				normal.Crossed += rep.Crossed
				for k, v := range rep.Status {
					normal.Status[k] += v
				}
				if normal.FirstError == "" {
					normal.FirstError = rep.FirstError
				}
				if rep.P99 > normal.P99 {
					normal.P99 = rep.P99
				}
			}
		})
		wg.Wait()
		cancel()
		<-sampled
		// Let connections close and the heap settle: up to 30s for the
		// descriptors to come back to where they were.
		settled := time.Now()
		time.Sleep(time.Second)
		after := snapshot(pid)
		for deadline := time.Now().Add(30 * time.Second); after.fds > before.fds+clients && time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
			after = snapshot(pid)
		}
		settle := time.Since(settled).Round(100 * time.Millisecond)
		fmt.Printf("\nattack %s (%v): %s\n", name, cfg.duration, attack)
		fmt.Printf("  normal calls meanwhile: %d sent, %d ok, %d lost, %d crossed; statuses %v; worst round p99 %v\n",
			normal.Sent, normal.OK, normal.Lost, normal.Crossed, normal.Status, normal.P99.Round(time.Millisecond))
		fmt.Printf("  server rss: before %s, during (highest sample) %s, after %s; VmHWM %s; fds %d -> %d (%v after the attack); threads %d -> %d\n",
			mib(before.rss), mib(max(peak, before.rss)), mib(after.rss), mib(after.hwm), before.fds, after.fds, settle, before.threads, after.threads)
		if l, err := os.ReadFile("/proc/loadavg"); err == nil {
			fmt.Printf("  load average: %s", l)
		}
	}
	return nil
}

func kib(n int64) string { return fmt.Sprintf("%dKiB", n>>10) }
