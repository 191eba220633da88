package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/skillbox-dev/skillbox/internal/image"
	"github.com/skillbox-dev/skillbox/internal/pyinterp"
	"github.com/skillbox-dev/skillbox/internal/skillenv"
	"github.com/skillbox-dev/skillbox/policy"
	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/skill"
)

type doctorBackend struct {
	Name     string `json:"name"`
	Summary  string `json:"summary"`
	Strength int    `json:"strength"`
	// Config is the backend's effective settings: its defaults merged with
	// the policy file's backends section ({} for a backend with none).
	Config map[string]any `json:"config"`
	sandbox.Capabilities
}

// doctorEnvironments is what doctor says of per-skill environments.
type doctorEnvironments struct {
	Cache string `json:"cache"`
	Built int    `json:"built"`
	// PipWheel is the pip that builds them, or PipErr why there is none.
	PipWheel string `json:"pip_wheel,omitempty"`
	PipErr   string `json:"pip_error,omitempty"`
	// Index is pip's configuration builds use (PIP_* and pip.conf).
	Index string `json:"index"`
	// BuildLimits are a build's effective limits: the defaults, changed by
	// the policy file's env_build (the defaults when the policy does not
	// load).
	BuildLimits buildLimits `json:"build_limits"`
}

// buildLimits are skillenv.Bounds as doctor shows them, in the policy
// file's env_build terms.
type buildLimits struct {
	Memory  string `json:"memory"`
	Pids    int    `json:"pids"`
	Size    string `json:"size"`
	Scratch string `json:"scratch"`
	Timeout string `json:"timeout"`
}

type doctorEnvelope struct {
	// Environments: per-skill Python environments.
	Environments doctorEnvironments `json:"environments"`
	// Auto is the backend "auto" picks, empty when none.
	Auto     string          `json:"auto"`
	AutoErr  string          `json:"auto_error,omitempty"`
	Backends []doctorBackend `json:"backends"`
	// PolicyErr says why the policy file could not be used (it does not
	// load, or its backends section is wrong); the report then shows every
	// backend's defaults, and run and serve refuse until it is fixed.
	PolicyErr string `json:"policy_error,omitempty"`
	// RootWarnings are problems with the skill roots (skillbox paths
	// shows them all); RootsErr says why the roots cannot be built (a
	// wrong .skillware.yaml), which list, run and serve refuse.
	RootWarnings []string `json:"root_warnings,omitempty"`
	RootsErr     string   `json:"roots_error,omitempty"`
	// Builders are the image builders found on PATH, in the order
	// skillbox prefers them; Builder is the one `skillbox image build`
	// uses, empty when none is usable, and BuilderErr then says why and
	// what to install.
	Builders   []image.Builder `json:"builders"`
	Builder    string          `json:"builder"`
	BuilderErr string          `json:"builder_error,omitempty"`
}

func cmdDoctor(ctx context.Context, c *cmdContext, args []string) error {
	fs := newFlags(c, "doctor", "[--json] [--policy FILE] [--backend-setting NAME.KEY=VALUE]...")
	jsonOut := fs.Bool("json", false, "print JSON")
	fs.StringVar(&c.policyPath, "policy", "", "policy `FILE` whose backends section is shown (default $XDG_CONFIG_HOME/skillbox/policy.yaml if it exists)")
	c.registerBackendSettings(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 0, "no arguments"); err != nil {
		return err
	}
	var env doctorEnvelope
	// The drivers the Runtime of run and serve would build; a policy file
	// that cannot be used is reported, not fatal: doctor is for finding
	// what is wrong.
	var backends *sandbox.Backends
	pol, err := c.policy()
	if err == nil {
		backends, err = sandbox.NewBackends(pol.Backends)
	}
	if err != nil {
		env.PolicyErr = err.Error()
	}
	for _, r := range sandbox.List() {
		b := doctorBackend{Name: r.Name, Summary: r.Summary, Strength: r.Strength, Config: map[string]any{}}
		d, err := backends.Lookup(r.Name)
		if err != nil {
			b.Capabilities = sandbox.Capabilities{Reason: err.Error()}
		} else {
			b.Capabilities = d.Probe(ctx)
			if cd, ok := d.(sandbox.Configurable); ok {
				b.Config = cd.Config()
			}
		}
		env.Backends = append(env.Backends, b)
	}
	if found, err := c.roots(); err != nil {
		env.RootsErr = err.Error()
	} else {
		env.RootWarnings = found.Warnings
	}
	env.Builders = image.Builders(ctx)
	if env.Builders == nil {
		env.Builders = []image.Builder{}
	}
	if b, err := image.DetectBuilderFrom(env.Builders); err == nil {
		env.Builder = b.Name
	} else {
		env.BuilderErr = err.Error()
	}
	if d, err := backends.Choose(ctx, sandbox.Auto, false); err == nil {
		env.Auto = d.Name()
	} else {
		env.AutoErr = err.Error()
	}
	env.Environments = c.doctorEnvironments(pol)
	if *jsonOut {
		return writeJSON(c.stdout, env, false)
	}
	printDoctor(c.stdout, env)
	return nil
}

// printDoctor writes the text report of env.
func printDoctor(w io.Writer, env doctorEnvelope) {
	for _, b := range env.Backends {
		state := "available"
		if !b.Available {
			state = "unavailable: " + strings.TrimPrefix(b.Reason, "backend "+b.Name+": ")
		}
		fmt.Fprintf(w, "%s — %s\n  %s\n", b.Name, b.Summary, state)
		if !b.Available && b.BestEffort {
			fmt.Fprintf(w, "  --best-effort runs it without the missing layers and keeps the others (each missing one is reported on every call)\n")
		}
		for _, l := range b.Layers {
			mark := "ok  "
			if !l.Available {
				mark = "MISSING"
			}
			fmt.Fprintf(w, "  [%s] %-22s %s\n", mark, l.Name, l.Detail)
		}
		if len(b.Enforces) > 0 {
			fmt.Fprintf(w, "  enforces: %v\n", b.Enforces)
		}
		if len(b.Config) > 0 {
			kv := make([]string, 0, len(b.Config))
			for _, k := range sortedKeys(b.Config) {
				kv = append(kv, fmt.Sprintf("%s=%v", k, b.Config[k]))
			}
			fmt.Fprintf(w, "  config: %s\n", strings.Join(kv, " "))
		}
	}
	if env.PolicyErr != "" {
		fmt.Fprintf(w, "\npolicy file not used (defaults shown): %s\n", env.PolicyErr)
	}
	if env.RootsErr != "" {
		fmt.Fprintf(w, "\nskill roots cannot be built: %s\n", oneLine(env.RootsErr))
	}
	for _, rw := range env.RootWarnings {
		fmt.Fprintf(w, "\nskill roots: warning: %s\n", rw)
	}
	fmt.Fprintf(w, "\nimage builders (skillbox image build):\n")
	for _, b := range env.Builders {
		state := "usable"
		if !b.Usable {
			state = "not used: " + b.Reason
		}
		fmt.Fprintf(w, "  %-8s %s (%s): %s\n", b.Name, b.Version, b.Path, state)
	}
	if env.Builder != "" {
		fmt.Fprintf(w, "  builds with → %s\n", env.Builder)
	} else {
		fmt.Fprintf(w, "  builds with → none: %s\n", env.BuilderErr)
	}
	if env.Auto != "" {
		fmt.Fprintf(w, "\nauto → %s\n", env.Auto)
	} else {
		fmt.Fprintf(w, "\nauto → none: %s\n", env.AutoErr)
	}
	e := env.Environments
	fmt.Fprintf(w, "\nskill environments (linux: a skill with requirements runs on its own, built with pip in a jail):\n  %d built in %s\n  index: %s\n", e.Built, e.Cache, e.Index)
	if e.PipErr != "" {
		fmt.Fprintf(w, "  [ ] pip: %s\n", e.PipErr)
	} else {
		fmt.Fprintf(w, "  [x] pip: %s\n", e.PipWheel)
	}
	l := e.BuildLimits
	fmt.Fprintf(w, "  build limits (policy env_build): memory %s, pids %d, size %s, scratch %s, timeout %s\n", l.Memory, l.Pids, l.Size, l.Scratch, l.Timeout)
	fmt.Fprintf(w, "  build ahead with 'skillbox env build SKILL'; %s names the interpreter they are made from\n", pyinterp.EnvVar)
}

// doctorEnvironments reports the environments' cache, pip, index and
// build limits (pol's, nil for the defaults).
func (c *cmdContext) doctorEnvironments(pol *policy.Policy) doctorEnvironments {
	var e doctorEnvironments
	b := skillenv.BoundsOf(pol)
	e.BuildLimits = buildLimits{Memory: skill.FormatSize(b.MaxMemory), Pids: b.MaxPids, Size: skill.FormatSize(b.MaxBytes),
		Scratch: skill.FormatSize(b.ScratchBytes), Timeout: b.Timeout.String()}
	if cache, err := c.envCache(); err == nil {
		e.Cache = cache.Dir
		if envs, err := cache.List(); err == nil {
			e.Built = len(envs)
		}
	}
	if p, err := skillenv.PipWheel(); err != nil {
		e.PipErr = err.Error()
	} else {
		e.PipWheel = p
	}
	if idx, err := skillenv.IndexFromEnv(c.env.Getenv); err != nil {
		e.Index = err.Error()
	} else {
		e.Index = idx.String()
	}
	return e
}
