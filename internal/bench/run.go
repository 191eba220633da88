package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"reflect"
	"runtime"
	"strings"
	"time"
)

// Kind is how a mode makes a call.
type Kind string

const (
	// Process starts one whole process per call and waits for its end.
	Process Kind = "process"
	// Call makes one call to a process (or Runtime) that stays up.
	Call Kind = "call"
)

// Caller makes calls to something that stays up between them (a server,
// a worker over a pipe, a Runtime). Call returns the call's result as
// JSON.
type Caller interface {
	Call(ctx context.Context) (json.RawMessage, error)
	Close() error
}

// A Caller with a Pid names the process that serves its calls (this
// process for calls made in it): the CPU time of that process and all
// below it, over a round's calls, is the row's CPU per call. Linux only.
type pidder interface {
	Pid() int
}

// Mode is one way of making the call.
type Mode struct {
	Name string
	Kind Kind
	// Baseline marks the mode the other rows divide by: at most one per
	// kind. A baseline that fails fails the run.
	Baseline bool
	// Argv and Env (nil: this process's) start a Process mode; its
	// standard output is the result as JSON. Dir is its working folder.
	Argv []string
	Env  []string
	Dir  string
	// Open starts a Call mode; the Caller is closed when the run ends.
	Open func(ctx context.Context) (Caller, error)
	// Gap is a pause before each call of a Call mode, not timed: time for
	// the server to make ready for the next call (a pre-forked child that
	// has imported the skill). Zero: calls back to back.
	Gap time.Duration
	// Skip, when set, says why the mode cannot run here: it is reported
	// as a row with that note and not run.
	Skip string
}

// Config says how long a run is.
type Config struct {
	// Rounds each run every Process mode once and every Call mode Calls
	// times, modes in turn; an uncounted round first warms caches and
	// pools and checks every mode's result against the baselines'.
	Rounds int
	Calls  int
	// Progress, when set, gets a line per round.
	Progress io.Writer
	// Reap makes this process the reaper of orphaned descendants (Linux)
	// so that a Process mode's CPU time includes the sandbox processes its
	// wrapper did not wait for. For a program that does nothing else: the
	// process then reaps every orphan of its descendants.
	Reap bool
}

// result is a mode's measurements.
type result struct {
	mode   Mode
	caller Caller
	lat    []time.Duration
	cpu    []time.Duration // per process (Process modes)
	// callCPU over callN calls: a Call mode's server, summed over rounds.
	callCPU time.Duration
	callN   int
	skip    string
}

// Run measures modes and returns the report; the caller fills in what the
// report says about the skill and the interpreter. A mode that fails is
// reported as skipped with its error; only a failing baseline (or a
// cancelled ctx) is an error.
func Run(ctx context.Context, cfg Config, modes []Mode) (*Report, error) {
	if cfg.Rounds < 1 || cfg.Calls < 1 {
		return nil, fmt.Errorf("bench: want at least one round and one call per round")
	}
	res := make([]*result, len(modes))
	for i, m := range modes {
		res[i] = &result{mode: m, skip: m.Skip}
	}
	defer func() {
		for _, r := range res {
			if r.caller != nil {
				r.caller.Close()
			}
		}
	}()
	// fail skips r with err, or returns the error for a baseline.
	fail := func(r *result, err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if r.mode.Baseline {
			return fmt.Errorf("%s: %w", r.mode.Name, err)
		}
		r.skip = oneLine(err.Error())
		r.lat, r.cpu, r.callCPU, r.callN = nil, nil, 0, 0
		if r.caller != nil {
			r.caller.Close()
			r.caller = nil
		}
		return nil
	}
	for _, r := range res {
		if r.skip != "" || r.mode.Kind != Call {
			continue
		}
		c, err := r.mode.Open(ctx)
		if err != nil {
			if err := fail(r, fmt.Errorf("start: %w", err)); err != nil {
				return nil, err
			}
			continue
		}
		r.caller = c
	}
	reap := cfg.Reap && subreaper() == nil
	load0 := Loadavg()
	var want json.RawMessage
	for round := -1; round < cfg.Rounds; round++ {
		// Baselines first in the uncounted round, so that every other
		// mode's result is checked against theirs.
		order := res
		if round < 0 {
			order = baselinesFirst(res)
		}
		for _, r := range order {
			if r.skip != "" {
				continue
			}
			n := 1
			var pid int
			var cpu0 time.Duration
			if r.mode.Kind == Call && round >= 0 {
				n = cfg.Calls
				if p, ok := r.caller.(pidder); ok {
					pid = p.Pid()
					cpu0 = treeCPU(pid)
				}
			}
			for range n {
				if r.mode.Gap > 0 {
					select {
					case <-ctx.Done():
						return nil, ctx.Err()
					case <-time.After(r.mode.Gap):
					}
				}
				d, cpu, out, err := r.once(ctx, reap)
				if err == nil && round < 0 {
					if want == nil {
						want = out
					} else if !sameJSON(out, want) {
						err = fmt.Errorf("result %s differs from the first baseline's %s", clip(out), clip(want))
					}
				}
				if err != nil {
					if err := fail(r, err); err != nil {
						return nil, err
					}
					break
				}
				if round >= 0 {
					r.lat = append(r.lat, d)
					if r.mode.Kind == Process {
						r.cpu = append(r.cpu, cpu)
					}
				}
			}
			if pid > 0 && r.skip == "" {
				if cpu1 := treeCPU(pid); cpu1 > 0 {
					r.callCPU += cpu1 - cpu0
					r.callN += n
				}
			}
		}
		if cfg.Progress != nil && round >= 0 {
			fmt.Fprintf(cfg.Progress, "round %d/%d, load %s\n", round+1, cfg.Rounds, Loadavg())
		}
	}
	return &Report{
		Time: time.Now(), Rounds: cfg.Rounds, CallsPerRound: cfg.Calls, CPUs: runtime.NumCPU(),
		LoadBefore: load0, LoadAfter: Loadavg(), Rows: rows(res),
	}, nil
}

func baselinesFirst(res []*result) []*result {
	out := make([]*result, 0, len(res))
	for _, r := range res {
		if r.mode.Baseline {
			out = append(out, r)
		}
	}
	for _, r := range res {
		if !r.mode.Baseline {
			out = append(out, r)
		}
	}
	return out
}

// once makes one call and returns its wall time, CPU time (Process modes)
// and result; reap adds the CPU time of the orphans the process left.
func (r *result) once(ctx context.Context, reap bool) (time.Duration, time.Duration, json.RawMessage, error) {
	if r.mode.Kind == Call {
		t0 := time.Now()
		out, err := r.caller.Call(ctx)
		return time.Since(t0), 0, out, err
	}
	var since int64
	if reap {
		since = uptimeTicks()
	}
	d, cpu, out, err := timeProcess(ctx, r.mode.Argv, r.mode.Env, r.mode.Dir)
	if reap {
		cpu += orphansCPU(since)
	}
	return d, cpu, out, err
}

// timeProcess runs argv to completion and returns its wall time, its CPU
// time (user and system, its reaped descendants included: a sandbox's
// processes are usually its children) and its standard output.
func timeProcess(ctx context.Context, argv, env []string, dir string) (time.Duration, time.Duration, json.RawMessage, error) {
	if len(argv) == 0 {
		return 0, 0, nil, errors.New("no command")
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	ownSession(cmd)
	cmd.Env, cmd.Dir = env, dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	t0 := time.Now()
	err := cmd.Run()
	d := time.Since(t0)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("%v: %s", err, clip(bytes.TrimSpace(errb.Bytes())))
	}
	return d, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), out.Bytes(), nil
}

func sameJSON(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

// clip shortens what a failing mode printed to fit a table cell.
func clip(b []byte) string {
	s := oneLine(string(b))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// TreeCPU is the CPU time (user and system) of process pid and every
// process below it (Linux; 0 elsewhere or when pid is 0).
func TreeCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	return treeCPU(pid)
}
