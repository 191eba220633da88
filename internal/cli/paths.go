package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/skillbox-dev/skillbox/skill"
)

// pathsEnvelope is `paths --json`: the skill roots in search order and
// where each comes from.
type pathsEnvelope struct {
	// Mode is "legacy" (no configuration file: SKILLWARE_SKILL_PATH,
	// ./skills, bundled) or "config" (resolution.order applies).
	Mode string `json:"mode"`
	// Order is the tier order applied.
	Order []string `json:"order"`
	// HonorSkillPath says whether SKILLWARE_SKILL_PATH is read
	// (legacy.honor_skillware_skill_path).
	HonorSkillPath bool `json:"honor_skillware_skill_path"`
	// ConfigFiles are the configuration files read, global first.
	ConfigFiles []string `json:"config_files"`
	// GlobalConfig is where the global file is looked for.
	GlobalConfig string `json:"global_config,omitempty"`
	// ProjectConfig is the .skillware.yaml found, if any.
	ProjectConfig string `json:"project_config,omitempty"`
	// Roots are every root considered, in search order; those with
	// exists false are not searched.
	Roots []pathsRoot `json:"roots"`
	// Warnings are the problems found: roots that are missing or at the
	// wrong level, configuration warnings, shadowed skills.
	Warnings []string `json:"warnings,omitempty"`
}

type pathsRoot struct {
	Path   string `json:"path"`
	Tier   string `json:"tier"`
	Exists bool   `json:"exists"`
	// Ignored: a ./skills folder of the working directory or a parent
	// that exists but is not searched, since another user could have put
	// skills in it (Problem says why).
	Ignored bool `json:"ignored,omitempty"`
	// Skills counts <category>/<name>/manifest.yaml in the root.
	Skills int `json:"skills"`
	// Source is env (SKILLWARE_SKILL_PATH), config, walk (./skills of the
	// working directory or a parent) or bundled; From says it in words.
	Source string `json:"source"`
	From   string `json:"from"`
	// Entry is the path as written; File, Key and Line locate a
	// configuration entry.
	Entry   string `json:"entry,omitempty"`
	File    string `json:"file,omitempty"`
	Key     string `json:"key,omitempty"`
	Line    int    `json:"line,omitempty"`
	Problem string `json:"problem,omitempty"`
}

func cmdPaths(ctx context.Context, c *cmdContext, args []string) error {
	jsonOut, err := c.jsonOnly("paths", args)
	if err != nil {
		return err
	}
	found, err := c.roots()
	if err != nil {
		return err
	}
	env := describeRoots(found)
	if jsonOut {
		return writeJSON(c.stdout, env, false)
	}
	printPaths(c.stdout, env)
	for _, w := range env.Warnings {
		warn(c.stderr, w)
	}
	return nil
}

func describeRoots(found *skill.FoundRoots) pathsEnvelope {
	env := pathsEnvelope{Mode: "legacy", HonorSkillPath: found.HonorSkillPath, ConfigFiles: []string{},
		GlobalConfig: found.GlobalConfig, ProjectConfig: found.ProjectConfig, Roots: []pathsRoot{}}
	if found.Config != nil {
		env.Mode = "config"
		env.ConfigFiles = append(env.ConfigFiles, found.Config.Files...)
	}
	for _, t := range found.Order {
		env.Order = append(env.Order, string(t))
	}
	env.Warnings = append(env.Warnings, found.Warnings...)
	first := map[string]skill.FoundRoot{} // id → the root that wins
	for _, r := range found.All {
		pr := pathsRoot{Path: r.Path, Tier: string(r.Tier), Exists: r.Exists, Ignored: r.Ignored, Source: r.From.Kind, From: r.From.String(),
			Entry: r.From.Entry, File: r.From.File, Key: r.From.Key, Line: r.From.Line, Problem: r.Problem}
		if r.Exists {
			ids := rootIDs(r.Path)
			pr.Skills = len(ids)
			for _, id := range ids {
				if w, ok := first[id]; ok {
					env.Warnings = append(env.Warnings, fmt.Sprintf("skill %s in %s (%s) shadows the %s skill in %s", id, w.Path, w.Tier, r.Tier, r.Path))
				} else {
					first[id] = r
				}
			}
		}
		env.Roots = append(env.Roots, pr)
	}
	return env
}

// rootIDs lists the ids of the skill folders in root (<category>/<name>
// with a manifest.yaml), without loading them.
func rootIDs(root string) []string {
	var ids []string
	cats, _ := os.ReadDir(root)
	for _, c := range cats {
		if strings.HasPrefix(c.Name(), ".") || c.Name() == "__pycache__" {
			continue
		}
		names, _ := os.ReadDir(filepath.Join(root, c.Name()))
		for _, n := range names {
			if strings.HasPrefix(n.Name(), ".") {
				continue
			}
			if fi, err := os.Stat(filepath.Join(root, c.Name(), n.Name(), skill.ManifestFile)); err == nil && fi.Mode().IsRegular() {
				ids = append(ids, c.Name()+"/"+n.Name())
			}
		}
	}
	return ids
}

func printPaths(w io.Writer, env pathsEnvelope) {
	switch env.Mode {
	case "legacy":
		fmt.Fprintf(w, "Skill roots in search order (legacy order %s: no Skillware configuration file)\n", strings.Join(env.Order, ", "))
	default:
		fmt.Fprintf(w, "Skill roots in search order (resolution.order %s)\n", strings.Join(env.Order, ", "))
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tTIER\tPATH\tSKILLS\tFROM")
	n := 0
	for _, r := range env.Roots {
		num, skills := "-", "missing"
		switch {
		case r.Exists:
			n++
			num, skills = fmt.Sprint(n), fmt.Sprint(r.Skills)
		case r.Ignored:
			skills = "ignored"
		}
		// A root's path may come from a project's .skillware.yaml (a cloned
		// repository's): one cell, as list's.
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", num, r.Tier, inline(w, r.Path), skills, inline(w, r.From))
	}
	tw.Flush()
	fmt.Fprintln(w)
	global := env.GlobalConfig
	switch {
	case global == "":
		global = "none (no HOME)"
	case !slices.Contains(env.ConfigFiles, global):
		global += " (not found)"
	}
	fmt.Fprintf(w, "global config:  %s\n", global)
	project := env.ProjectConfig
	if project == "" {
		project = "none (" + skill.ProjectConfigFile + " in the working directory or its first five parents)"
	}
	fmt.Fprintf(w, "project config: %s\n", project)
	if !env.HonorSkillPath {
		fmt.Fprintf(w, "%s: ignored (legacy.honor_skillware_skill_path: false)\n", skill.SkillPathEnv)
	}
}
