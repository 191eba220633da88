package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/skillbox-dev/skillbox"
	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/lockfile"
	"github.com/skillbox-dev/skillbox/skill"
)

// runEnvelope is the --json success shape; part of the CLI contract.
// Fields after duration_ms are extensions and appear only when non-empty.
type runEnvelope struct {
	OK         bool               `json:"ok"`
	Result     json.RawMessage    `json:"result"`
	Skill      skillbox.SkillInfo `json:"skill"`
	Backend    string             `json:"backend"`
	DurationMS int64              `json:"duration_ms"`
	Warnings   []string           `json:"warnings,omitempty"`
	Stdout     string             `json:"stdout,omitempty"`
	Stderr     string             `json:"stderr,omitempty"`
}

// maxParamsFile bounds --params-file and stdin params.
const maxParamsFile = 16 << 20

func cmdRun(ctx context.Context, c *cmdContext, args []string) error {
	fs := newFlags(c, "run", "SKILL [flags]")
	var (
		params, paramsFile, backend, timeout, memory string
		trust, jsonOut, bestEffort                   bool
		allowNet, allowEnv                           listFlag
		sf                                           secretFlags
		allowRead, egressResolve                     listFlag
		locked                                       bool
		lockPath                                     string
	)
	fs.StringVar(&params, "params", "", "call parameters as a JSON object")
	fs.StringVar(&paramsFile, "params-file", "", "read the parameters from `FILE` (- for standard input)")
	fs.StringVar(&backend, "backend", "auto", "backend `NAME`: auto (strongest available), linux, process, ...")
	fs.BoolVar(&trust, "trust-remote-code", false, "let a skill from an external root run")
	fs.StringVar(&timeout, "timeout", "", "wall-clock limit, e.g. 2s or 500ms")
	fs.StringVar(&memory, "memory", "", "memory limit, e.g. 256MiB, 1GiB, 512M, 64k")
	fs.Var(&allowNet, "allow-net", "grant network access to `HOST[:PORT]` the skill requests (repeatable)")
	fs.Var(&allowEnv, "allow-env", "grant the environment variable `NAME` the skill requests (repeatable)")
	fs.Var(&allowRead, "allow-read", "let the skill read the host `PATH` (read-only; repeatable)")
	fs.Var(&egressResolve, "egress-resolve", "send a granted host name to a fixed address, `HOST=IP`, granting that address (repeatable)")
	fs.StringVar(&c.policyPath, "policy", "", "policy `FILE` (default $XDG_CONFIG_HOME/skillbox/policy.yaml if it exists)")
	sf.register(fs)
	fs.BoolVar(&locked, "locked", false, "refuse to run unless the skill, its digest and its grants match the lockfile")
	fs.StringVar(&lockPath, "lockfile", "", "lockfile `FILE` for --locked (default ./"+lockfile.Name+")")
	fs.BoolVar(&bestEffort, "best-effort", false, "run even if isolation layers are missing (each is reported on every call)")
	fs.BoolVar(&jsonOut, "json", false, "print one JSON object on stdout")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 1, "one SKILL (an id like text/word_stats or a folder path)"); err != nil {
		return err
	}
	opts := skillbox.CallOptions{
		Backend:         backend,
		TrustRemoteCode: trust,
		AllowNet:        allowNet,
		AllowEnv:        allowEnv,
		BestEffort:      bestEffort,
	}
	if opts.AllowRead, err = absPaths(allowRead, "--allow-read"); err != nil {
		return err
	}
	if opts.EgressResolve, err = resolveFlags(egressResolve); err != nil {
		return err
	}
	if lockPath != "" && !locked {
		return errdefs.New(errdefs.Invalid, "--lockfile is used only with --locked")
	}
	if locked {
		if lockPath == "" {
			lockPath = lockfile.Name
		}
		if opts.Lock, err = lockfile.Load(lockPath); err != nil {
			return err
		}
	}
	provider, err := sf.provider(c)
	if err != nil {
		return err
	}
	if timeout != "" {
		d, err := time.ParseDuration(timeout)
		if err != nil || d <= 0 {
			return errdefs.New(errdefs.Invalid, "--timeout %q: want a positive duration such as 2s or 500ms", timeout)
		}
		opts.Timeout = d
	}
	if memory != "" {
		n, err := skill.ParseSize(memory)
		if err != nil || n <= 0 {
			return errdefs.New(errdefs.Invalid, "--memory %q: want a positive size such as 256MiB, 1GiB, 512M or 64k", memory)
		}
		opts.Memory = n
	}
	raw, err := readParams(c, params, paramsFile)
	if err != nil {
		return err
	}

	rt, closeRT, err := c.runtime(true, skillbox.WithSecrets(provider))
	if err != nil {
		return err
	}
	defer closeRT()
	res, err := rt.Call(ctx, pos[0], raw, opts)
	if err != nil {
		return err
	}
	if jsonOut {
		return writeJSON(c.stdout, runEnvelope{
			OK: true, Result: res.Value, Skill: res.Skill, Backend: res.Backend,
			DurationMS: res.Duration.Milliseconds(), Warnings: res.Warnings,
			Stdout: string(res.Stdout), Stderr: string(res.Stderr),
		}, false)
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(c.stderr, "skillbox: warning: %s\n", w)
	}
	c.stderr.Write(res.Stdout)
	c.stderr.Write(res.Stderr)
	var v any
	if err := json.Unmarshal(res.Value, &v); err != nil {
		return errdefs.Wrap(errdefs.Internal, err, "result")
	}
	return writeJSON(c.stdout, v, true)
}

func readParams(c *cmdContext, params, file string) (json.RawMessage, error) {
	if params != "" && file != "" {
		return nil, errdefs.New(errdefs.Invalid, "give --params or --params-file, not both")
	}
	var data []byte
	switch {
	case params != "":
		data = []byte(params)
	case file == "-":
		b, err := io.ReadAll(io.LimitReader(c.stdin, maxParamsFile+1))
		if err != nil {
			return nil, errdefs.Wrap(errdefs.Invalid, err, "read params from standard input")
		}
		data = b
	case file != "":
		f, err := os.Open(file)
		if err != nil {
			return nil, errdefs.Wrap(errdefs.Invalid, err, "--params-file")
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, maxParamsFile+1))
		if err != nil {
			return nil, errdefs.Wrap(errdefs.Invalid, err, "--params-file")
		}
		data = b
	default:
		return json.RawMessage(`{}`), nil
	}
	if len(data) > maxParamsFile {
		return nil, errdefs.New(errdefs.Invalid, "params are larger than %d bytes", maxParamsFile)
	}
	if !json.Valid(data) {
		return nil, errdefs.New(errdefs.Invalid, "params are not valid JSON")
	}
	return json.RawMessage(data), nil
}
