package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/skillbox-dev/skillbox/sandbox"
)

type doctorBackend struct {
	Name     string `json:"name"`
	Summary  string `json:"summary"`
	Strength int    `json:"strength"`
	sandbox.Capabilities
}

type doctorEnvelope struct {
	// Auto is the backend "auto" picks, empty when none.
	Auto     string          `json:"auto"`
	AutoErr  string          `json:"auto_error,omitempty"`
	Backends []doctorBackend `json:"backends"`
}

func cmdDoctor(ctx context.Context, c *cmdContext, args []string) error {
	fs := newFlags(c, "doctor", "[--json]")
	jsonOut := fs.Bool("json", false, "print JSON")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 0, "no arguments"); err != nil {
		return err
	}
	var env doctorEnvelope
	for _, r := range sandbox.List() {
		b := doctorBackend{Name: r.Name, Summary: r.Summary, Strength: r.Strength}
		d, err := sandbox.Lookup(r.Name)
		if err != nil {
			b.Capabilities = sandbox.Capabilities{Reason: err.Error()}
		} else {
			b.Capabilities = d.Probe(ctx)
		}
		env.Backends = append(env.Backends, b)
	}
	if d, err := sandbox.Choose(ctx, sandbox.Auto, false); err == nil {
		env.Auto = d.Name()
	} else {
		env.AutoErr = err.Error()
	}
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
	}
	if env.Auto != "" {
		fmt.Fprintf(w, "\nauto → %s\n", env.Auto)
	} else {
		fmt.Fprintf(w, "\nauto → none: %s\n", env.AutoErr)
	}
}
