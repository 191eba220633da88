package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/skillbox-dev/skillbox/internal/bench"
)

// The large-parameters comparison (issue 17, target 2): the same skill
// called with params of 1 KB, 100 KB and 1 MB (it answers their length)
// and asked for a 1 MB result (the output cap raised in its manifest),
// through an in-process Python HTTP server (the baseline) and `skillbox
// serve --http` (single-use, calls spaced so that the next call's child
// is ready), alternated call by call in one run.

const (
	paramsHeading = "## Large parameters (issue 17 target 2)"
	paramsBegin   = "<!-- compare-params: begin (scripts/compare-params writes between these lines) -->"
	paramsEnd     = "<!-- compare-params: end -->"
)

// paramsSkill answers the length of params["data"], or a string of
// params["n"] characters.
const paramsSkill = `from skillware.core.base_skill import BaseSkill


class ParamsSize(BaseSkill):
    @property
    def manifest(self):
        return {"name": "params_size", "version": "1.0.0"}

    def execute(self, params):
        if "n" in params:
            return {"data": "x" * params["n"]}
        return {"len": len(params["data"])}
`

const paramsManifest = `name: params_size
version: 1.0.0
description: Answers the length of its data parameter, or a string of n characters.
category: bench
parameters:
  type: object
  properties:
    data: {type: string}
    n: {type: integer, minimum: 0}
  additionalProperties: false
permissions:
  limits:
    output: 4MiB
`

// paramsCase is one size measured.
type paramsCase struct {
	name   string
	mb     float64 // the megabytes that cross (params or result)
	params string
}

func paramsCases() []paramsCase {
	data := func(n int) string {
		// Printable ASCII with no escapes: the size on the wire is the
		// size of the string.
		return `{"data":"` + strings.Repeat("abcdefghij", n/10) + `"}`
	}
	return []paramsCase{
		{"params 1 KB", 1e3 / 1e6, data(1e3)},
		{"params 100 KB", 1e5 / 1e6, data(1e5)},
		{"params 1 MB", 1, data(1e6)},
		{"result 1 MB", 1, `{"n":1000000}`},
	}
}

type sample struct {
	lat []time.Duration
	cpu time.Duration
	n   int
}

// runParams measures; before, when set, is a second skillbox binary (an
// earlier build) measured alternately with sbExe, for a change's effect.
func runParams(ctx context.Context, rounds, calls int, sbExe, before, python, doc, label, command string, gap time.Duration) error {
	tmp, err := os.MkdirTemp("", "compare-params")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if sbExe, err = filepath.Abs(sbExe); err != nil {
		return err
	}
	if before != "" {
		if before, err = filepath.Abs(before); err != nil {
			return err
		}
	}
	dir := filepath.Join(tmp, "skills", "bench", "params_size")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	os.WriteFile(filepath.Join(dir, "manifest.yaml"), []byte(paramsManifest), 0o644)
	os.WriteFile(filepath.Join(dir, "skill.py"), []byte(paramsSkill), 0o644)
	env := skillboxEnv(tmp, python)
	cases := paramsCases()
	type set struct{ base, sb, before bench.Caller }
	callers := make([]set, len(cases))
	defer func() {
		for _, p := range callers {
			for _, c := range []bench.Caller{p.base, p.sb, p.before} {
				if c != nil {
					c.Close()
				}
			}
		}
	}()
	for i, c := range cases {
		py := bench.Python{Exe: python, Dir: dir, Params: c.params}
		sb := bench.Skillbox{Exe: sbExe, Env: env, Dir: tmp, ID: "bench/params_size", Params: c.params}
		if callers[i].base, err = py.HTTPMode("").Open(ctx); err != nil {
			return fmt.Errorf("%s: baseline: %w", c.name, err)
		}
		if callers[i].sb, err = sb.ServeHTTPMode("").Open(ctx); err != nil {
			return fmt.Errorf("%s: serve: %w", c.name, err)
		}
		if before != "" {
			sb.Exe = before
			if callers[i].before, err = sb.ServeHTTPMode("").Open(ctx); err != nil {
				return fmt.Errorf("%s: serve (before): %w", c.name, err)
			}
		}
	}
	// An uncounted round: warm up, and check that both answer the same.
	for i, c := range cases {
		want, err := callers[i].base.Call(ctx)
		if err != nil {
			return fmt.Errorf("%s: baseline: %w", c.name, err)
		}
		time.Sleep(gap)
		got, err := callers[i].sb.Call(ctx)
		if err != nil {
			return fmt.Errorf("%s: serve: %w", c.name, err)
		}
		if !sameJSONText(got, want) {
			return fmt.Errorf("%s: serve answered %.100s, the baseline %.100s", c.name, got, want)
		}
	}
	load0 := bench.Loadavg()
	res := make([][3]sample, len(cases))
	// CPU per call: each server's whole process tree over the whole
	// run (clock ticks), divided by its calls; it includes what a server
	// does between calls (a single-use server forks and prepares the next
	// call's child then).
	pidOf := func(c bench.Caller) int {
		if p, ok := c.(interface{ Pid() int }); ok && c != nil {
			return p.Pid()
		}
		return 0
	}
	cpu0 := make([][3]time.Duration, len(cases))
	for i := range cases {
		for k, c := range []bench.Caller{callers[i].base, callers[i].sb, callers[i].before} {
			if c != nil {
				cpu0[i][k] = bench.TreeCPU(pidOf(c))
			}
		}
	}
	one := func(ctx context.Context, c bench.Caller, s *sample) error {
		t0 := time.Now()
		if _, err := c.Call(ctx); err != nil {
			return err
		}
		d := time.Since(t0)
		// Until the answer is read: the client's decoding of a 1 MB
		// envelope (serve) or bare result (the baseline) is not the
		// server's cost, and differs between the two.
		if w, ok := c.(interface{ Wire() time.Duration }); ok && w.Wire() > 0 {
			d = w.Wire()
		}
		s.lat = append(s.lat, d)
		s.n++
		return nil
	}
	for round := range rounds {
		for i, c := range cases {
			for range calls {
				// The two skillbox builds swap places every round.
				order := []int{0, 1, 2}
				if round%2 == 1 {
					order = []int{0, 2, 1}
				}
				for _, k := range order {
					cl := []bench.Caller{callers[i].base, callers[i].sb, callers[i].before}[k]
					if cl == nil {
						continue
					}
					select {
					case <-ctx.Done():
						return ctx.Err()
					case <-time.After(gap):
					}
					if err := one(ctx, cl, &res[i][k]); err != nil {
						return fmt.Errorf("%s: %w", c.name, err)
					}
				}
			}
		}
		fmt.Fprintf(os.Stderr, "round %d/%d, load %s\n", round+1, rounds, bench.Loadavg())
	}
	load1 := bench.Loadavg()
	for i := range cases {
		for k, c := range []bench.Caller{callers[i].base, callers[i].sb, callers[i].before} {
			if c != nil {
				res[i][k].cpu = bench.TreeCPU(pidOf(c)) - cpu0[i][k]
			}
		}
	}

	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	p50 := func(s sample) float64 { return ms(bench.Summarize(s.lat).P50) }
	cpu := func(s sample) float64 {
		if s.n == 0 {
			return 0
		}
		return ms(s.cpu) / float64(s.n)
	}
	small := res[0] // the 1 KB case: the fixed cost
	var b strings.Builder
	fmt.Fprintf(&b, "`%s`, %s, %d rounds × %d calls per mode and size, alternated call by call, %v apart, each timed until its answer was read (not decoded); load average %s before, %s after.\n\n",
		command, time.Now().UTC().Format("2006-01-02 15:04 UTC"), rounds, calls, gap, load0, load1)
	b.WriteString("| size | in-process server p50 ms | serve --http p50 ms | p50 ratio | server ms per MB (p50 − 1 KB p50) | serve ms per MB | per-MB ratio | CPU ms per call (server tree, whole run), baseline / serve |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for i, c := range cases {
		base, sb := res[i][0], res[i][1]
		perMB := func(k int) string {
			if i == 0 {
				return "—"
			}
			return fmt.Sprintf("%.2f", (p50(res[i][k])-p50(small[k]))/c.mb)
		}
		ratio := "—"
		if i > 0 {
			if d := p50(base) - p50(small[0]); d > 0 {
				ratio = fmt.Sprintf("%.2f×", (p50(sb)-p50(small[1]))/d)
			}
		}
		fmt.Fprintf(&b, "| %s | %.2f | %.2f | %.2f× | %s | %s | %s | %.1f / %.1f |\n",
			c.name, p50(base), p50(sb), p50(sb)/p50(base), perMB(0), perMB(1), ratio, cpu(base), cpu(sb))
	}
	if before != "" {
		b.WriteString("\n| size | serve p50 ms, before | after | after / before | CPU ms per call (server tree, whole run), before / after |\n|---|---:|---:|---:|---:|\n")
		for i, c := range cases {
			fmt.Fprintf(&b, "| %s | %.2f | %.2f | %.2f× | %.1f / %.1f |\n", c.name, p50(res[i][2]), p50(res[i][1]), p50(res[i][1])/p50(res[i][2]), cpu(res[i][2]), cpu(res[i][1]))
		}
	}
	if label != "" {
		fmt.Fprintf(&b, "\n%s\n", label)
	}
	fmt.Print(b.String())
	if doc != "" {
		return bench.UpdateDoc(doc, paramsHeading, paramsBegin, paramsEnd, b.String())
	}
	return nil
}

func sameJSONText(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}
