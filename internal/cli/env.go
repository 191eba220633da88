package cli

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/skillbox-dev/skillbox"
	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/skillenv"
	"github.com/skillbox-dev/skillbox/internal/skillenv/jailbuild"
	"github.com/skillbox-dev/skillbox/skill"
)

// envInfo is one environment in `env list --json` and `env prune --json`.
type envInfo struct {
	Key string `json:"key"`
	// Digest names what the environment holds, as trusted_environments
	// lists it (skillenv's Env.Digest).
	Digest       string    `json:"digest"`
	Dir          string    `json:"dir"`
	Python       string    `json:"python"`
	Requirements []string  `json:"requirements"`
	Resolved     []string  `json:"resolved"`
	Size         int64     `json:"size"`
	Created      time.Time `json:"created"`
}

// envListEnvelope is `env list --json`.
type envListEnvelope struct {
	Cache        string    `json:"cache"`
	Environments []envInfo `json:"environments"`
}

// envPruneEnvelope is `env prune --json`.
type envPruneEnvelope struct {
	Cache   string    `json:"cache"`
	Removed []envInfo `json:"removed"`
	InUse   []envInfo `json:"in_use"`
	// Freed is the file content removed, in bytes.
	Freed int64 `json:"freed"`
}

// envBuildEnvelope is `env build --json`.
type envBuildEnvelope struct {
	OK           bool                          `json:"ok"`
	Environments []*skillbox.EnvironmentStatus `json:"environments"`
}

func cmdEnv(ctx context.Context, c *cmdContext, args []string) error {
	const line = "build SKILL... [--backend NAME] | list | prune [--json]"
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintf(c.stderr, "Usage: skillbox env %s\n\n"+
			"  build  build the Python environment of each skill that declares requirements, ahead of\n"+
			"         its first call (pip in a jail, from pip's configured index: PIP_INDEX_URL, pip.conf)\n"+
			"  list   the built environments: key, python, requirements, resolved set, size, created\n"+
			"  prune  remove every environment no running skillbox uses\n", line)
		if len(args) == 0 {
			return errdefs.New(errdefs.Invalid, "want a subcommand: build, list or prune (usage: skillbox env %s)", line)
		}
		return nil
	}
	switch args[0] {
	case "build":
		return c.envBuild(ctx, args[1:])
	case "list":
		return c.envList(args[1:])
	case "prune":
		return c.envPrune(args[1:])
	}
	return errdefs.New(errdefs.Invalid, "unknown env subcommand %q: want build, list or prune (usage: skillbox env %s)", args[0], line)
}

// envProgress prints an environment build's progress on stderr: the
// announcement, what a best-effort build goes without, and pip's main
// steps.
func (c *cmdContext) envProgress() skillbox.Option {
	return skillbox.WithEnvProgress(func(l string) {
		switch {
		case strings.HasPrefix(l, "building the environment"), strings.HasPrefix(l, "best-effort: "):
			fmt.Fprintf(c.stderr, "skillbox: %s\n", l)
		case strings.HasPrefix(l, "Collecting "), strings.HasPrefix(l, "Successfully installed "):
			fmt.Fprintf(c.stderr, "skillbox:   %s\n", l)
		}
	})
}

func (c *cmdContext) envBuild(ctx context.Context, args []string) error {
	fset := newFlags(c, "env build", "SKILL... [--backend NAME] [--best-effort] [--json]")
	jsonOut := fset.Bool("json", false, "print a JSON envelope")
	bestEffort := fset.Bool("best-effort", false, "build without the memory or pids cgroup controller this host lacks (each missing one is reported)")
	backend := fset.String("backend", "", "the backend whose interpreter the environments are for (default: auto)")
	pos, err := parse(fset, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return errdefs.New(errdefs.Invalid, "env build: name at least one skill (usage: skillbox env build SKILL... [--backend NAME] [--best-effort] [--json])")
	}
	if *bestEffort {
		ctx = jailbuild.WithBestEffort(ctx)
	}
	rt, closeRT, err := c.runtime(false)
	if err != nil {
		return err
	}
	defer closeRT()
	env := envBuildEnvelope{OK: true, Environments: []*skillbox.EnvironmentStatus{}}
	for _, ref := range pos {
		st, err := rt.BuildEnvironment(ctx, ref, *backend)
		if err != nil {
			return err
		}
		env.Environments = append(env.Environments, st)
		if *jsonOut {
			continue
		}
		switch {
		case !st.RunsEnvironments:
			fmt.Fprintf(c.stdout, "%s: backend %s runs no per-skill environments (it checks the requirements against its interpreter)\n", st.Skill, st.Backend)
		case len(st.Requirements) == 0:
			fmt.Fprintf(c.stdout, "%s: no requirements; runs on %s\n", st.Skill, st.Python)
		default:
			fmt.Fprintf(c.stdout, "%s: environment %s (%s) on %s\n", st.Skill, shortKey(st.Key), strings.Join(st.Resolved, " "), st.Python)
		}
	}
	if *jsonOut {
		return writeJSON(c.stdout, env, false)
	}
	return nil
}

// envCache is the cache folder's "envs".
func (c *cmdContext) envCache() (*skillenv.Cache, error) {
	dir, err := c.cacheDir()
	if err != nil {
		return nil, err
	}
	envs, err := skillbox.EnvCacheDir(dir)
	if err != nil {
		return nil, err
	}
	return &skillenv.Cache{Dir: envs}, nil
}

func infoOf(e *skillenv.Env) envInfo {
	i := envInfo{Key: e.Key, Digest: e.Digest(), Dir: e.Dir, Python: e.RunsOn(), Requirements: e.Requirements, Resolved: []string{}, Created: e.Built}
	for _, p := range e.Resolved {
		i.Resolved = append(i.Resolved, p.String())
	}
	filepath.WalkDir(e.Dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				i.Size += fi.Size()
			}
		}
		return nil
	})
	return i
}

func shortKey(k string) string {
	k = strings.TrimPrefix(k, "sha256:")
	if len(k) > 12 {
		k = k[:12]
	}
	return k
}

func (c *cmdContext) envList(args []string) error {
	jsonOut, err := c.jsonOnly("env list", args)
	if err != nil {
		return err
	}
	cache, err := c.envCache()
	if err != nil {
		return err
	}
	envs, err := cache.List()
	if err != nil {
		return err
	}
	out := envListEnvelope{Cache: cache.Dir, Environments: []envInfo{}}
	for _, e := range envs {
		out.Environments = append(out.Environments, infoOf(e))
	}
	if jsonOut {
		return writeJSON(c.stdout, out, false)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tPYTHON\tREQUIREMENTS\tRESOLVED\tSIZE\tCREATED")
	for _, e := range out.Environments {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", shortKey(e.Key), e.Python, strings.Join(e.Requirements, " "),
			strings.Join(e.Resolved, " "), skill.FormatSize(e.Size), e.Created.Local().Format(time.DateTime))
	}
	return tw.Flush()
}

func (c *cmdContext) envPrune(args []string) error {
	jsonOut, err := c.jsonOnly("env prune", args)
	if err != nil {
		return err
	}
	cache, err := c.envCache()
	if err != nil {
		return err
	}
	// Sizes are measured before the removal.
	sizes := map[string]envInfo{}
	if envs, err := cache.List(); err == nil {
		for _, e := range envs {
			sizes[e.Key] = infoOf(e)
		}
	}
	removed, inUse, err := cache.Prune(func(*skillenv.Env) bool { return false })
	if err != nil {
		return err
	}
	out := envPruneEnvelope{Cache: cache.Dir, Removed: []envInfo{}, InUse: []envInfo{}}
	for _, e := range removed {
		i, ok := sizes[e.Key]
		if !ok {
			i = envInfo{Key: e.Key, Digest: e.Digest(), Dir: e.Dir, Python: e.RunsOn(), Requirements: e.Requirements, Created: e.Built}
		}
		out.Removed = append(out.Removed, i)
		out.Freed += i.Size
	}
	for _, e := range inUse {
		out.InUse = append(out.InUse, infoOf(e))
	}
	if jsonOut {
		return writeJSON(c.stdout, out, false)
	}
	for _, e := range out.Removed {
		fmt.Fprintf(c.stdout, "removed %s %s (%s)\n", shortKey(e.Key), strings.Join(e.Requirements, " "), skill.FormatSize(e.Size))
	}
	for _, e := range out.InUse {
		fmt.Fprintf(c.stdout, "kept %s %s: in use by a running skillbox\n", shortKey(e.Key), strings.Join(e.Requirements, " "))
	}
	fmt.Fprintf(c.stdout, "freed %s\n", skill.FormatSize(out.Freed))
	return nil
}
