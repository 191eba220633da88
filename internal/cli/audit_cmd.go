package cli

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/skillbox-dev/skillbox/audit"
	"github.com/skillbox-dev/skillbox/errdefs"
)

// auditEnvelope is `audit --json`.
type auditEnvelope struct {
	Log      string          `json:"log"`
	Records  []audit.Record  `json:"records"`
	Problems []audit.Problem `json:"problems,omitempty"`
}

func cmdAudit(ctx context.Context, c *cmdContext, args []string) error {
	fs := newFlags(c, "audit", "[--json] [--skill ID] [--since DURATION] [--file PATH]")
	jsonOut := fs.Bool("json", false, "print JSON")
	id := fs.String("skill", "", "only records of the skill `ID`")
	since := fs.String("since", "", "only records newer than `DURATION` ago, e.g. 1h or 30m")
	file := fs.String("file", "", "read the log at `PATH` (default $"+audit.PathEnv+" or $XDG_STATE_HOME/skillbox/audit.jsonl)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 0, "no arguments"); err != nil {
		return err
	}
	var f audit.Filter
	f.Skill = *id
	if *since != "" {
		d, err := time.ParseDuration(*since)
		if err != nil || d <= 0 {
			return errdefs.New(errdefs.Invalid, "--since %q: want a positive duration such as 1h or 30m", *since)
		}
		f.Since = time.Now().Add(-d)
	}
	path := *file
	if path == "" {
		path = audit.DefaultPath(c.env.Getenv)
	}
	env := auditEnvelope{Log: path, Records: []audit.Record{}}
	fh, err := os.Open(path)
	switch {
	case errors.Is(err, iofs.ErrNotExist):
		if *file != "" {
			return errdefs.New(errdefs.NotFound, "no audit log at %s", path)
		}
		// Nothing recorded yet.
	case err != nil:
		return errdefs.New(errdefs.Invalid, "audit log: %v", err)
	default:
		defer fh.Close()
		recs, problems, err := audit.Read(fh, f)
		if err != nil {
			return errdefs.New(errdefs.Internal, "read audit log %s: %v", path, err)
		}
		if recs != nil {
			env.Records = recs
		}
		env.Problems = problems
	}
	for _, p := range env.Problems {
		fmt.Fprintf(c.stderr, "skillbox: warning: audit log %s %s\n", path, p)
	}
	if *jsonOut {
		return writeJSON(c.stdout, env, false)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tEVENT\tSKILL\tOUTCOME\tBACKEND\tDETAIL")
	for _, r := range env.Records {
		detail := r.Error
		if detail == "" {
			detail = strings.TrimSpace(r.Trust + " " + r.Key + " " + r.Detail)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Time.Local().Format(time.DateTime), cell(r.Event), cell(r.Skill), cell(r.Outcome), cell(r.Backend), oneLine(detail))
	}
	return tw.Flush()
}

// cell is s as one column of a row of `audit`: quoted when it holds a
// control character (a newline or a tab in the caller's text, such as a
// skill reference that names no skill, recorded as given), so that it
// stays in its column and its row cannot pass for several.
func cell(s string) string {
	if strings.ContainsFunc(s, unicode.IsControl) {
		return strconv.Quote(s)
	}
	return s
}
