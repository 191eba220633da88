package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"github.com/skillbox-dev/skillbox"
	"github.com/skillbox-dev/skillbox/errdefs"
)

// runEnvelope is the --json success shape; part of the CLI contract.
// Fields after duration_ms are extensions and appear only when non-empty.
type runEnvelope struct {
	OK         bool               `json:"ok"`
	Result     json.RawMessage    `json:"result"`
	Skill      skillbox.SkillInfo `json:"skill"`
	Backend    string             `json:"backend"`
	DurationMS int64              `json:"duration_ms"`
	// Warm is set when the call ran warm (the policy's "warm: true" for
	// the skill): calls of this skill may share state that its import
	// created.
	Warm     bool     `json:"warm,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
	Stdout   string   `json:"stdout,omitempty"`
	Stderr   string   `json:"stderr,omitempty"`
}

// warmMeaning is what running warm gives up, in the words of the docs.
const warmMeaning = "calls of this skill may share state that its import created"

// maxParamsFile bounds --params-file and stdin params.
const maxParamsFile = 16 << 20

// oneShotGC is the GOGC of a `run`: the process allocates ~4 MB in all and
// exits, and at the default 100 the collector starts one cycle near the
// end (a 4 MB goal), work thrown away a moment later. 400 puts the goal at
// 16 MB, above what a run allocates. GOGC in the environment wins.
const oneShotGC = 400

func cmdRun(ctx context.Context, c *cmdContext, args []string) error {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(oneShotGC)
	}
	fs := newFlags(c, "run", "SKILL [flags]")
	var (
		params, paramsFile string
		jsonOut            bool
		g                  grantFlags
		lf                 lockFlags
	)
	fs.StringVar(&params, "params", "", "call parameters as a JSON object")
	fs.StringVar(&paramsFile, "params-file", "", "read the parameters from `FILE` (- for standard input)")
	g.register(c, fs, "the skill")
	lf.register(fs, "refuse to run unless the skill, its digest and its grants match the lockfile")
	fs.BoolVar(&jsonOut, "json", false, "print one JSON object on stdout")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := fs.wantArgs(pos, 1, "one SKILL (an id like text/word_stats or a folder path)"); err != nil {
		return err
	}
	opts, provider, err := g.options(c)
	if err != nil {
		return err
	}
	opts.OneShot = true // one call, then the process ends: nothing to keep warm
	// The flags are for this one skill: one whose manifest has no
	// permissions block (it cannot request anything) gets them as given.
	opts.GrantUndeclared = true
	if opts.Lock, err = lf.load(); err != nil {
		return err
	}
	raw, err := readParams(c, params, paramsFile)
	if err != nil {
		return err
	}

	rt, closeRT, err := c.runtime(true, skillbox.WithSecrets(provider), c.imageProgress())
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
			DurationMS: res.Duration.Milliseconds(), Warm: res.Warm, Warnings: res.Warnings,
			Stdout: string(res.Stdout), Stderr: string(res.Stderr),
		}, false)
	}
	for _, w := range res.Warnings {
		warn(c.stderr, w)
	}
	if res.Warm {
		fmt.Fprintln(c.stderr, "skillbox: ran warm: "+warmMeaning)
	}
	c.stderr.Write(res.Stdout)
	c.stderr.Write(res.Stderr)
	// Numbers as the skill wrote them: a float64 would round integers
	// over 2^53 and refuse those beyond its range.
	dec := json.NewDecoder(bytes.NewReader(res.Value))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
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
		return nil, errdefs.New(errdefs.Invalid, "params are not valid JSON: %s; give a JSON object, such as --params '{\"text\": \"hi\"}'", jsonProblem(data))
	}
	return json.RawMessage(data), nil
}

// jsonProblem says why data, which is not valid JSON, is not, and where.
func jsonProblem(data []byte) string {
	if len(bytes.TrimSpace(data)) == 0 {
		return "empty"
	}
	var v any
	err := json.Unmarshal(data, &v)
	if se := (*json.SyntaxError)(nil); errors.As(err, &se) {
		return fmt.Sprintf("%s at byte %d", se, se.Offset)
	}
	return fmt.Sprint(err)
}
