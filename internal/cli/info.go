package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"text/tabwriter"

	"github.com/skillbox-dev/skillbox"
	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/pyinterp"
	"github.com/skillbox-dev/skillbox/internal/schema"
	"github.com/skillbox-dev/skillbox/internal/shellquote"
	"github.com/skillbox-dev/skillbox/skill"
)

// skillSummary is one skill in `list --json`.
type skillSummary struct {
	ID          string   `json:"id"`
	Version     string   `json:"version"`
	Tier        string   `json:"tier"`
	Description string   `json:"description"`
	Path        string   `json:"path"`
	Digest      string   `json:"digest"`
	Warnings    []string `json:"warnings,omitempty"`
}

type listEnvelope struct {
	Skills []skillSummary `json:"skills"`
	Errors []string       `json:"errors,omitempty"`
	// Warnings are problems with the roots (a SKILLWARE_SKILL_PATH entry
	// that is missing or names a skill or category folder, ...).
	Warnings []string `json:"warnings,omitempty"`
}

func summarize(s *skill.Skill) skillSummary {
	m := s.Bundle.Manifest
	desc := m.ShortDescription
	if desc == "" {
		desc = firstLine(m.Description)
	}
	return skillSummary{ID: s.ID, Version: m.Version, Tier: string(s.Tier), Description: desc, Path: s.Dir, Digest: s.Digest, Warnings: s.Warnings}
}

// indent prefixes each line of s that is not empty with prefix.
func indent(s, prefix string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "\n")
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

func cmdList(ctx context.Context, c *cmdContext, args []string) error {
	jsonOut, err := c.jsonOnly("list", args)
	if err != nil {
		return err
	}
	rt, closeRT, err := c.runtime(false)
	if err != nil {
		return err
	}
	defer closeRT()
	skills, errs := rt.List()
	env := listEnvelope{Skills: []skillSummary{}}
	for _, s := range skills {
		env.Skills = append(env.Skills, summarize(s))
	}
	for _, e := range errs {
		env.Errors = append(env.Errors, e.Error())
	}
	env.Warnings = rt.RootWarnings()
	if jsonOut {
		return writeJSON(c.stdout, env, false)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tVERSION\tTIER\tDESCRIPTION")
	for _, s := range env.Skills {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", inline(c.stdout, s.ID), inline(c.stdout, s.Version), s.Tier, inline(c.stdout, s.Description))
	}
	tw.Flush()
	for _, s := range env.Skills {
		for _, w := range s.Warnings {
			warn(c.stderr, w)
		}
	}
	for _, w := range env.Warnings {
		warn(c.stderr, w)
	}
	for _, e := range env.Errors {
		fmt.Fprintf(c.stderr, "skillbox: error: %s\n", oneLine(e))
	}
	return nil
}

// inspectEnvelope is `inspect --json`.
type inspectEnvelope struct {
	skillSummary
	Manifest     json.RawMessage `json:"manifest"`
	Instructions string          `json:"instructions"`
	Card         json.RawMessage `json:"card,omitempty"`
	Requests     requests        `json:"requests"`
	// Environment is which interpreter and environment a call would use
	// (absent when no backend is available).
	Environment *skillbox.EnvironmentStatus `json:"environment,omitempty"`
}

// requests is what the skill asks for; nothing is granted by asking.
type requests struct {
	Env          []envRequest `json:"env"`
	Network      []string     `json:"network"`
	Read         []string     `json:"read"`
	Requirements []string     `json:"requirements"`
	Limits       any          `json:"limits,omitempty"`
	// Execution is the manifest's execution (in_process unless it says
	// container) and Container its container block.
	Execution string            `json:"execution"`
	Container *containerRequest `json:"container,omitempty"`
}

// containerRequest is a manifest's container block, as written.
type containerRequest struct {
	Image      string `json:"image,omitempty"`
	Dockerfile string `json:"dockerfile,omitempty"`
	Python     string `json:"python,omitempty"`
}

type envRequest struct {
	Name     string `json:"name"`
	Required bool   `json:"required"`
	Grant    string `json:"grant"`
}

func describeRequests(m *skill.Manifest) requests {
	r := requests{Env: []envRequest{}, Network: []string{}, Read: []string{}, Requirements: []string{}}
	required := map[string]bool{}
	for _, v := range m.EnvVars {
		required[v.Name] = v.Required
	}
	// Permissions.Env already holds the env_vars names when the manifest
	// has no permissions.env (the parser merges them).
	for _, n := range m.Permissions.Env {
		r.Env = append(r.Env, envRequest{Name: n, Required: required[n], Grant: "--allow-env " + n})
	}
	r.Network = append(r.Network, m.Permissions.Network...)
	r.Read = append(r.Read, m.Permissions.FilesystemRead...)
	r.Requirements = append(r.Requirements, m.Requirements...)
	r.Execution = skill.ExecInProcess
	if m.Containerized() && m.Container != nil {
		r.Execution = skill.ExecContainer
		r.Container = &containerRequest{Image: m.Container.Image, Dockerfile: m.Container.Dockerfile, Python: m.Container.Python}
	}
	l := m.Permissions.Limits
	if l.Timeout != 0 || l.Memory != 0 || l.Pids != 0 || l.Output != 0 {
		// Only what the manifest asks for: an unset limit is the
		// backend's default, not "0s" or 0.
		lim := map[string]any{}
		if l.Timeout != 0 {
			lim["timeout"] = l.Timeout.String()
		}
		if l.Memory != 0 {
			lim["memory"] = l.Memory
		}
		if l.Pids != 0 {
			lim["pids"] = l.Pids
		}
		if l.Output != 0 {
			lim["output"] = l.Output
		}
		r.Limits = lim
	}
	return r
}

func cmdInspect(ctx context.Context, c *cmdContext, args []string) error {
	fs := newFlags(c, "inspect", "SKILL [--json]")
	jsonOut := fs.Bool("json", false, "print JSON")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 1, "one SKILL"); err != nil {
		return err
	}
	rt, closeRT, err := c.runtime(false)
	if err != nil {
		return err
	}
	defer closeRT()
	s, err := rt.Resolve(pos[0])
	if err != nil {
		return err
	}
	withSignatureWarning(s)
	m := s.Bundle.Manifest
	// Which interpreter and environment a call would use (never built
	// here), and what a built one costs each call when it is not trusted
	// (measured in the backend's sandbox); a host without a backend
	// still shows the rest.
	envStatus, envErr := rt.MeasureEnvironment(ctx, s.Dir, "")
	env := inspectEnvelope{
		Environment:  envStatus,
		skillSummary: summarize(s),
		Manifest:     m.JSON(),
		Instructions: s.Bundle.Instructions,
		Card:         s.Bundle.Card,
		Requests:     describeRequests(m),
	}
	if *jsonOut {
		return writeJSON(c.stdout, env, false)
	}
	w := c.stdout
	fmt.Fprintf(w, "%s %s (%s)\n  path:   %s\n  digest: %s\n", s.ID, inline(w, m.Version), s.Tier, s.Dir, s.Digest)
	if m.Issuer != nil {
		fmt.Fprintf(w, "  issuer: %s\n", inline(w, fmt.Sprint(m.Issuer)))
	}
	// The description is indented: a line at the margin is always
	// skillbox's own (a section), never one of the skill's text.
	fmt.Fprintf(w, "\n%s\n", indent(strings.TrimSpace(m.Description), "  "))
	fmt.Fprintln(w, "\nRequests (nothing is granted by asking):")
	if len(env.Requests.Env)+len(env.Requests.Network)+len(env.Requests.Read) == 0 {
		fmt.Fprintln(w, "  nothing beyond its own bundle and a private scratch folder")
	}
	for _, e := range env.Requests.Env {
		req := "optional"
		if e.Required {
			req = "required"
		}
		fmt.Fprintf(w, "  env %s (%s): grant with %s\n", e.Name, req, e.Grant)
	}
	for _, n := range env.Requests.Network {
		fmt.Fprintf(w, "  network %s: grant with --allow-net %s\n", n, n)
	}
	for _, p := range env.Requests.Read {
		fmt.Fprintf(w, "  read %s (inside the bundle)\n", p)
	}
	if len(m.Requirements) > 0 {
		fmt.Fprintf(w, "  python packages: %s\n", strings.Join(m.Requirements, ", "))
	}
	if c := env.Requests.Container; c != nil {
		python := c.Python
		if python == "" {
			python = "python3 on the image's PATH"
		}
		if c.Image != "" {
			fmt.Fprintf(w, "  execution: container, image %s (its root file system is the jail's root; python: %s)\n", c.Image, python)
		} else {
			fmt.Fprintf(w, "  execution: container, built from %s in the bundle (python: %s)\n", c.Dockerfile, python)
		}
	}
	fmt.Fprintln(w, "\nInterpreter:")
	if m.Containerized() {
		fmt.Fprintln(w, "  the image's python (execution above); the skill's requirements must be in the image")
	} else {
		printEnvironment(w, envStatus, envErr, pos[0])
	}
	for _, w := range s.Warnings {
		warn(c.stderr, w)
	}
	return nil
}

// printEnvironment says which interpreter and environment a skill runs
// on, and how to build or choose one; ref is the skill as the operator
// named it, for the command it prints.
func printEnvironment(w io.Writer, st *skillbox.EnvironmentStatus, err error, ref string) {
	switch {
	case err != nil:
		fmt.Fprintf(w, "  unknown: %v\n", err)
	case !st.RunsEnvironments:
		fmt.Fprintf(w, "  backend %s runs the skill on its interpreter, which must have the requirements (%s selects another)\n", st.Backend, pyinterp.EnvVar)
	case len(st.Requirements) == 0:
		fmt.Fprintf(w, "  %s on backend %s (%s selects another)\n", st.Python, st.Backend, pyinterp.EnvVar)
	case st.Built:
		fmt.Fprintf(w, "  %s on backend %s, with environment %s (%s) at %s\n",
			st.Python, st.Backend, shortKey(st.Key), strings.Join(st.Resolved, " "), st.Dir)
		switch {
		case st.Trusted:
			fmt.Fprintf(w, "  trusted (trusted_environments lists its digest %s): its site and packages are processed once, in the zygote\n", st.Digest)
		case st.KeyListed:
			fmt.Fprintf(w, "  untrusted: each call's own process processes its site and imports its packages; trusted_environments lists its key %s, which trusts nothing (a key names the requirements, not what they resolved to): after reviewing the resolved set, list its digest %s instead\n", st.Key, st.Digest)
		default:
			fmt.Fprintf(w, "  untrusted: each call's own process processes its site and imports its packages (after reviewing the resolved set, trusted_environments may list its digest %s; a rebuild that resolves to another set has another)\n", st.Digest)
		}
		printImportCost(w, st)
	default:
		fmt.Fprintf(w, "  %s on backend %s, with an environment not built yet (key %s): the first call builds it, or 'skillbox env build %s'\n",
			st.Python, st.Backend, shortKey(st.Key), shellquote.Word(ref))
	}
}

// printImportCost says what an untrusted environment costs each call, as
// measured, or why it was not.
func printImportCost(w io.Writer, st *skillbox.EnvironmentStatus) {
	c := st.ImportCost
	if c == nil {
		if st.ImportCostError != "" {
			fmt.Fprintf(w, "  per-call import cost: not measured: %s\n", oneLine(st.ImportCostError))
		}
		return
	}
	mods := strings.Join(c.Modules, ", ")
	if mods == "" {
		mods = "none found in the environment"
	}
	what := "per-call import cost"
	if st.Trusted {
		what = "import cost (paid once by the zygote, as it is trusted)"
	}
	fmt.Fprintf(w, "  %s: %.1f ms (site %.1f ms, imports %.1f ms: %s)\n    %s\n", what, c.TotalMS, c.SiteMS, c.ImportsMS, mods, c.How)
	for _, m := range sortedKeys(c.Failed) {
		fmt.Fprintf(w, "    import %s failed: %s\n", m, oneLine(c.Failed[m]))
	}
}

func cmdSchema(ctx context.Context, c *cmdContext, args []string) error {
	fs := newFlags(c, "schema", "SKILL --format claude|openai|gemini|ollama|mcp")
	format := fs.String("format", "", "claude, openai, gemini, ollama or mcp")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 1, "one SKILL"); err != nil {
		return err
	}
	if *format == "" {
		return errdefs.New(errdefs.Invalid, "--format is required: claude, openai, gemini, ollama or mcp")
	}
	s, closeRT, err := c.resolve(pos[0])
	if err != nil {
		return err
	}
	defer closeRT()
	out, err := schema.Export(ToolOf(s), *format)
	if err != nil {
		return err
	}
	for _, w := range s.Warnings {
		warn(c.stderr, w)
	}
	if text, ok := out.(string); ok {
		_, err := fmt.Fprint(c.stdout, text)
		return err
	}
	return writeJSON(c.stdout, out, true)
}

// ToolOf describes s for schema export. The description is the
// manifest's byte for byte, as Skillware's own adapters pass it.
func ToolOf(s *skill.Skill) schema.Tool {
	m := s.Bundle.Manifest
	return schema.Tool{
		ID:           s.ID,
		Name:         m.Name,
		Description:  m.Description,
		Parameters:   m.Parameters,
		Outputs:      m.Outputs,
		Instructions: s.Bundle.Instructions,
	}
}

// versionInfo is `version --json`.
type versionInfo struct {
	// Version is the module version: a tag such as v0.4.0 for a binary
	// installed with `go install ...@version`, "(devel)" for one built
	// from a checkout, or what -ldflags set in Version.
	Version string `json:"version"`
	// Commit is the VCS revision a checkout build was made from, and
	// Modified says its work tree had uncommitted changes.
	Commit   string `json:"commit,omitempty"`
	Time     string `json:"commit_time,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go,omitempty"`
}

// buildVersion reads the version from bi, the binary's build information
// (nil when there is none); Version, when set with -ldflags, wins.
func buildVersion(bi *debug.BuildInfo) versionInfo {
	v := versionInfo{Version: Version}
	if bi == nil {
		return v
	}
	if v.Version == "dev" && bi.Main.Version != "" {
		v.Version = bi.Main.Version
	}
	v.Go = bi.GoVersion
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

// String is the one line `skillbox version` prints.
func (v versionInfo) String() string {
	s := "skillbox " + v.Version
	if v.Commit != "" {
		s += " commit " + v.Commit
		if v.Modified {
			s += " (modified)"
		}
	}
	if v.Go != "" {
		s += " " + v.Go
	}
	return s
}

func cmdVersion(ctx context.Context, c *cmdContext, args []string) error {
	jsonOut, err := c.jsonOnly("version", args)
	if err != nil {
		return err
	}
	bi, _ := debug.ReadBuildInfo()
	v := buildVersion(bi)
	if jsonOut {
		return writeJSON(c.stdout, v, false)
	}
	_, err = fmt.Fprintln(c.stdout, v)
	return err
}
