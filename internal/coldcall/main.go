// Command coldcall measures a cold `skillbox run` against the same skill run
// in-process by a bare python3 of the same interpreter, as whole processes
// alternated in one run (issue 13). scripts/coldcall builds the binary and
// runs it; it reports and never fails on slowness.
//
// Each round runs every mode once, in turn, so that the machine's load
// falls on all of them alike; the ratios are what the run reports, the
// absolute figures come with the load average they were taken under.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/skillbox-dev/skillbox/internal/bench"
)

type mode struct {
	name string
	argv []string
	env  []string // added to the run's environment
	out  []byte   // the first run's stdout, checked against the baseline
	lat  []time.Duration
	cpu  []time.Duration // user+system time of the process and its reaped descendants
}

func main() {
	var (
		rounds   = flag.Int("n", 40, "rounds (each runs every mode once)")
		skillbox = flag.String("skillbox", "", "the skillbox binary (required)")
		python   = flag.String("python", "/usr/bin/python3", "the interpreter, for both sides (exported as SKILLBOX_PYTHON)")
		skillID  = flag.String("skill", "text/word_stats", "the skill id skillbox runs")
		skillDir = flag.String("dir", "examples/skills/text/word_stats", "the same skill's folder, for the bare run")
		params   = flag.String("params", `{"text":"The quick brown fox. The lazy dog!","top":3}`, "the call's params")
		process  = flag.Bool("process", true, "also run --backend process")
		doc      = flag.String("doc", "", "update this file's \"## Cold CLI call (issue 13)\" section with the table")
		label    = flag.String("label", "", "a note put under the table (what was measured)")
		compare  = flag.String("compare", "", "another skillbox binary (an older build) to run as one more mode")
	)
	flag.Parse()
	if *skillbox == "" {
		fmt.Fprintln(os.Stderr, "coldcall: -skillbox is required")
		os.Exit(2)
	}
	if err := run(*rounds, *skillbox, *compare, *python, *skillID, *skillDir, *params, *process, *doc, *label); err != nil {
		fmt.Fprintln(os.Stderr, "coldcall:", err)
		os.Exit(1)
	}
}

func run(rounds int, skillbox, compare, python, skillID, skillDir, params string, process bool, doc, label string) error {
	tmp, err := os.MkdirTemp("", "coldcall")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	drv := filepath.Join(tmp, "driver.py")
	if err := os.WriteFile(drv, []byte(bench.Driver), 0o644); err != nil {
		return err
	}
	dir, err := filepath.Abs(skillDir)
	if err != nil {
		return err
	}
	// The CLI's cache, state and config live in the run's own folders (the
	// audit log does not grow in the user's), warmed by the first round.
	env := append(os.Environ(), "SKILLBOX_PYTHON="+python,
		"XDG_CACHE_HOME="+filepath.Join(tmp, "cache"),
		"XDG_STATE_HOME="+filepath.Join(tmp, "state"),
		"XDG_CONFIG_HOME="+filepath.Join(tmp, "config"))
	// -I as the harness's interpreter (no PYTHON* variables, no user
	// site); site is processed, as the harness does for the skill.
	bare := []string{python, "-I", "-B", drv, "once", dir, params}
	modes := []*mode{
		{name: "bare python3, in-process (baseline)", argv: bare},
		{name: "skillbox run (linux, default)", argv: []string{skillbox, "run", skillID, "--params", params}},
	}
	if compare != "" {
		// Its own cache: two builds with different harnesses would
		// otherwise replace each other's compiled harness at every run.
		modes = append(modes, &mode{name: "skillbox run, " + filepath.Base(compare) + " (linux, default)",
			argv: []string{compare, "run", skillID, "--params", params},
			env:  []string{"XDG_CACHE_HOME=" + filepath.Join(tmp, "cache-compare")}})
	}
	if process {
		modes = append(modes, &mode{name: "skillbox run --backend process", argv: []string{skillbox, "run", "--backend", "process", skillID, "--params", params}})
	}
	if bw, err := exec.LookPath("bwrap"); err == nil {
		modes = append(modes, &mode{name: "bwrap around the bare run", argv: append([]string{bw,
			"--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
			"--ro-bind", dir, dir, "--ro-bind", drv, drv,
			"--unshare-all", "--die-with-parent", "--new-session"}, bare...)})
	}
	load0 := loadavg()
	for r := -1; r < rounds; r++ { // round -1 warms caches and is not counted
		for _, m := range modes {
			d, cpu, out, err := timeRun(m.argv, append(env[:len(env):len(env)], m.env...))
			if err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			if r < 0 {
				m.out = out
				continue
			}
			m.lat = append(m.lat, d)
			m.cpu = append(m.cpu, cpu)
		}
	}
	load1 := loadavg()
	for _, m := range modes[1:] {
		if !sameJSON(m.out, modes[0].out) {
			return fmt.Errorf("%s printed %q, the baseline %q", m.name, m.out, modes[0].out)
		}
	}
	ver, _ := exec.Command(python, "-c", "import sys; print(sys.version.split()[0])").Output()
	var b strings.Builder
	fmt.Fprintf(&b, "`N=%d scripts/coldcall`, %s: %s (Python %s) on both sides, skill %s, %d cores; load average %s before, %s after.\n\n",
		rounds, time.Now().UTC().Format("2006-01-02 15:04 MST"), python, strings.TrimSpace(string(ver)), skillID, runtime.NumCPU(), load0, load1)
	b.WriteString("| mode | p50 ms | p90 ms | p50 / bare | CPU p50 ms | CPU / bare |\n|---|---:|---:|---:|---:|---:|\n")
	base, baseCPU := pct(modes[0].lat, 50), pct(modes[0].cpu, 50)
	for _, m := range modes {
		p50, cpu := pct(m.lat, 50), pct(m.cpu, 50)
		fmt.Fprintf(&b, "| %s | %.1f | %.1f | %.2f× | %.1f | %.2f× |\n", m.name, ms(p50), ms(pct(m.lat, 90)),
			float64(p50)/float64(base), ms(cpu), float64(cpu)/float64(baseCPU))
	}
	if label != "" {
		fmt.Fprintf(&b, "\n%s\n", label)
	}
	fmt.Print(b.String())
	if doc != "" {
		return bench.UpdateDoc(doc, heading, begin, end, b.String())
	}
	return nil
}

// timeRun runs argv to completion and returns its wall time, its CPU time
// (user and system, its reaped descendants included: a jail's processes
// are the CLI's children) and its stdout.
func timeRun(argv, env []string) (time.Duration, time.Duration, []byte, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	t0 := time.Now()
	err := cmd.Run()
	d := time.Since(t0)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("%v: %s", err, bytes.TrimSpace(errb.Bytes()))
	}
	return d, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), out.Bytes(), nil
}

func sameJSON(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

func pct(l []time.Duration, p int) time.Duration {
	s := slices.Clone(l)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

const (
	heading = "## Cold CLI call (issue 13)"
	begin   = "<!-- coldcall: begin (scripts/coldcall writes between these lines) -->"
	end     = "<!-- coldcall: end -->"
)
