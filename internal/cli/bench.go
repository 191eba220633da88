package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/skillbox-dev/skillbox"
	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/bench"
	"github.com/skillbox-dev/skillbox/internal/pyinterp"
	"github.com/skillbox-dev/skillbox/policy"
	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/skill"
)

// The skill bench measures: bundled, standard library only, nothing
// requested; the same everywhere, so figures from two hosts compare.
const (
	benchSkill  = "text/word_stats"
	benchParams = `{"text":"The quick brown fox. The lazy dog!","top":3}`
)

// benchGap spaces the calls of one row per backend: time for a pool to
// make the next single-use worker ready, as between an agent's tool calls.
const benchGap = 250 * time.Millisecond

// benchEnvelope is the --json shape of bench; part of the CLI contract.
type benchEnvelope struct {
	OK bool `json:"ok"`
	*bench.Report
}

// benchExe is the skillbox binary the whole-process rows run (tests
// replace it).
var benchExe = os.Executable

func cmdBench(ctx context.Context, c *cmdContext, args []string) error {
	fs := newFlags(c, "bench", "[--n ROUNDS] [--calls N] [--backend NAME]... [--json]")
	var backends listFlag
	rounds := fs.Int("n", 5, "rounds: each runs every whole-process row once and makes --calls calls of every other row")
	calls := fs.Int("calls", 5, "calls per round of each row that calls a running worker")
	fs.Var(&backends, "backend", "measure only backend `NAME` (repeatable; default every backend)")
	jsonOut := fs.Bool("json", false, "print JSON")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 0, "no arguments"); err != nil {
		return err
	}
	if *rounds < 1 || *calls < 1 {
		return errdefs.New(errdefs.Invalid, "--n and --calls must be at least 1")
	}
	var names []string
	for _, r := range sandbox.List() {
		names = append(names, r.Name)
	}
	for _, b := range backends {
		if !slices.Contains(names, b) {
			return errdefs.New(errdefs.Invalid, "--backend %q: unknown backend (known: %s)", b, strings.Join(names, ", "))
		}
	}
	if len(backends) > 0 {
		names = slices.DeleteFunc(names, func(n string) bool { return !slices.Contains(backends, n) })
	}
	exe, err := benchExe()
	if err != nil {
		return errdefs.Wrap(errdefs.Internal, err, "the skillbox binary")
	}
	in, err := pyinterp.Resolve(ctx, "")
	if err != nil {
		return err
	}

	// The `run` processes keep their audit log and read their policy in
	// a folder of bench's own, removed at the end: the user's audit log
	// does not grow, and every backend runs with its defaults, as the
	// Runtime here does. They share skillbox's cache (the bundled skills,
	// the interpreter facts, the pyodide runtime) with every other run.
	tmp, err := os.MkdirTemp("", "skillbox-bench")
	if err != nil {
		return errdefs.Wrap(errdefs.Internal, err, "temporary folder")
	}
	defer os.RemoveAll(tmp)
	env := []string{"XDG_STATE_HOME=" + filepath.Join(tmp, "state"), "XDG_CONFIG_HOME=" + filepath.Join(tmp, "config")}
	for _, k := range []string{"HOME", "XDG_CACHE_HOME"} {
		if v := c.env.Getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k != "HOME" && !strings.HasPrefix(k, "XDG_") && k != skill.SkillPathEnv {
			env = append(env, kv)
		}
	}
	cache, err := c.cacheDir()
	if err != nil {
		return err
	}
	root, err := skillbox.BundledRoot(cache)
	if err != nil {
		return errdefs.Wrap(errdefs.Internal, err, "bundled skills")
	}
	newRuntime := func(opts ...skillbox.Option) (*skillbox.Runtime, error) {
		return skillbox.New(append([]skillbox.Option{skillbox.WithRoots(skill.Root{Path: root, Tier: skill.TierBundled}),
			skillbox.WithCacheDir(cache), skillbox.WithLookupEnv(c.env.LookupEnv)}, opts...)...)
	}
	rt, err := newRuntime()
	if err != nil {
		return err
	}
	defer rt.Close()
	// The linux backend's other way to run single-use calls, a jail per
	// call started ahead of it (exec: prestart), in a runtime of its own.
	var prestart *skillbox.Runtime
	if slices.Contains(names, "linux") {
		cfg := sandbox.Config{}
		cfg.Set(sandbox.Setting{Key: "exec", Value: "prestart", Kind: "str", Flag: "linux.exec=prestart"})
		if prestart, err = newRuntime(skillbox.WithPolicy(&policy.Policy{Backends: map[string]sandbox.Config{"linux": cfg}})); err != nil {
			return err
		}
		defer prestart.Close()
	}
	sk, err := rt.Resolve(benchSkill)
	if err != nil {
		return err
	}

	py := bench.Python{Exe: in.Command, Dir: sk.Dir, Params: benchParams}
	sb := bench.Skillbox{Exe: exe, Env: env, Dir: tmp, ID: benchSkill, Params: benchParams}
	worker := py.LinesMode("python3 worker, skill imported once, over a pipe")
	worker.Baseline = true
	modes := []bench.Mode{
		{Name: "bare python3, skill in-process", Kind: bench.Process, Baseline: true, Argv: py.Argv()},
		worker,
	}
	for _, name := range names {
		run := sb.RunMode("skillbox run --backend "+name, name)
		call := bench.Mode{Name: "Runtime.Call, " + name + ", single-use, back to back", Kind: bench.Call,
			Open: func(context.Context) (bench.Caller, error) {
				return runtimeCaller{rt: rt, opts: skillbox.CallOptions{Backend: name}}, nil
			}}
		spaced := call
		spaced.Name, spaced.Gap = fmt.Sprintf("Runtime.Call, %s, single-use, %v apart", name, benchGap), benchGap
		reason := unavailable(ctx, name)
		if reason != "" {
			run.Skip, call.Skip, spaced.Skip = reason, reason, reason
		}
		modes = append(modes, run, call, spaced)
		if name == "linux" {
			for _, m := range []bench.Mode{call, spaced} {
				m.Name = strings.Replace(m.Name, "linux,", "linux exec prestart,", 1)
				m.Open = func(context.Context) (bench.Caller, error) {
					return runtimeCaller{rt: prestart, opts: skillbox.CallOptions{Backend: name}}, nil
				}
				modes = append(modes, m)
			}
		}
	}
	cfg := bench.Config{Rounds: *rounds, Calls: *calls}
	if !*jsonOut {
		cfg.Progress = c.stderr
	}
	rep, err := bench.Run(ctx, cfg, modes)
	if err != nil {
		if ctx.Err() != nil {
			return errdefs.Wrap(errdefs.Canceled, ctx.Err(), "bench")
		}
		return errdefs.Wrap(errdefs.Unavailable, err, "bench baseline")
	}
	rep.Skill, rep.Python, rep.PythonVersion = benchSkill, in.Command, in.Version
	if *jsonOut {
		return writeJSON(c.stdout, benchEnvelope{OK: true, Report: rep}, false)
	}
	return rep.WriteText(c.stdout)
}

// unavailable is why backend name cannot run here, or "".
func unavailable(ctx context.Context, name string) string {
	d, err := sandbox.Lookup(name)
	if err != nil {
		return err.Error()
	}
	if caps := d.Probe(ctx); !caps.Available {
		return "unavailable: " + strings.TrimPrefix(caps.Reason, "backend "+name+": ")
	}
	return ""
}

// runtimeCaller makes single-use calls of the bench skill through a
// Runtime in this process (what serve does for each request, without the
// transport).
type runtimeCaller struct {
	rt   *skillbox.Runtime
	opts skillbox.CallOptions
}

func (r runtimeCaller) Call(ctx context.Context) (json.RawMessage, error) {
	res, err := r.rt.Call(ctx, benchSkill, json.RawMessage(benchParams), r.opts)
	if err != nil {
		return nil, err
	}
	return res.Value, nil
}

func (runtimeCaller) Close() error { return nil }

// Pid is this process: the Runtime, its pools and their sandboxes are
// below it (as is the idle baseline worker).
func (runtimeCaller) Pid() int { return os.Getpid() }
