package skill

import (
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"strings"
)

// walkDirs is how many folders are searched for ./skills and for
// .skillware.yaml: the working directory and its first five parents
// (Skillware's loop of six steps up from the working directory).
const walkDirs = 6

// RootsEnv is what FindRoots reads from its surroundings.
type RootsEnv struct {
	// Getenv reads SKILLWARE_SKILL_PATH, SKILLWARE_CONFIG_DIR,
	// XDG_CONFIG_HOME and HOME (USERPROFILE and APPDATA on Windows); nil
	// reads nothing.
	Getenv func(string) string
	// Cwd is the working directory; relative paths are read from it. ""
	// searches no ./skills and no project configuration file.
	Cwd string
	// Bundled is the bundled skills' folder ("" for none).
	Bundled string
}

// Where a root comes from (RootSource.Kind).
const (
	// FromSkillPath: an entry of SKILLWARE_SKILL_PATH.
	FromSkillPath = "env"
	// FromConfig: paths.project or paths.external of a configuration file.
	FromConfig = "config"
	// FromWalk: the skills folder of the working directory or a parent.
	FromWalk = "walk"
	// FromBundled: skillbox's bundled skills.
	FromBundled = "bundled"
)

// RootSource says where a root comes from.
type RootSource struct {
	// Kind is FromSkillPath, FromConfig, FromWalk or FromBundled.
	Kind string
	// Entry is the path as written (SKILLWARE_SKILL_PATH, configuration).
	Entry string
	// File, Key and Line locate a configuration entry (Key is
	// "paths.project" or "paths.external").
	File string
	Key  string
	Line int
	// Dir is, for FromWalk, the folder whose skills folder this is.
	Dir string
}

// String describes the source in a few words.
func (s RootSource) String() string {
	switch s.Kind {
	case FromSkillPath:
		return SkillPathEnv
	case FromConfig:
		return fmt.Sprintf("%s:%d %s", s.File, s.Line, s.Key)
	case FromWalk:
		return "./skills of " + s.Dir
	case FromBundled:
		return "bundled"
	}
	return s.Kind
}

// FoundRoot is one root FindRoots considered.
type FoundRoot struct {
	Root
	// From says where it comes from.
	From RootSource
	// Exists says it is a folder that is searched; only those are.
	Exists bool
	// Ignored says it is a folder that is not searched: a skills folder
	// found by walking up from the working directory that another user
	// could have put skills in (Problem says why).
	Ignored bool
	// Problem, when set, says what is wrong with a configured root (missing,
	// not a folder, a skill or category folder instead of a root) and what
	// to write instead. It is also in FoundRoots.Warnings.
	Problem string
}

// FoundRoots is the outcome of FindRoots.
type FoundRoots struct {
	// All are the roots in search order, those that do not exist included
	// (for display); a folder reached twice is kept at its first place.
	All []FoundRoot
	// Config is the merged configuration, nil when no file exists (then
	// the legacy order applies: SKILLWARE_SKILL_PATH, ./skills, bundled).
	Config *Config
	// GlobalConfig is where the global configuration file is looked for
	// ("" when no folder can be named: no HOME).
	GlobalConfig string
	// ProjectConfig is the project configuration file found, or "".
	ProjectConfig string
	// Order is the tier order applied.
	Order []Tier
	// HonorSkillPath says whether SKILLWARE_SKILL_PATH was read.
	HonorSkillPath bool
	// Warnings are the problems found: bad roots and configuration
	// warnings. They do not stop resolution and must be shown.
	Warnings []string
}

// Roots returns the roots that exist, in search order.
func (f *FoundRoots) Roots() []Root {
	var out []Root
	for _, r := range f.All {
		if r.Exists {
			out = append(out, r.Root)
		}
	}
	return out
}

// legacyOrder is Skillware's order without a configuration file.
var legacyOrder = []Tier{TierExternal, TierProject, TierBundled}

// FindRoots builds the skill roots as Skillware does.
//
// Without a configuration file (legacy): each entry of SKILLWARE_SKILL_PATH
// (external), then the skills folder of the working directory and of its
// first five parents, nearest first (project), then the bundled skills.
//
// With a configuration file — $SKILLWARE_CONFIG_DIR/config.yaml (else
// $XDG_CONFIG_HOME/skillware/config.yaml, else ~/.config/skillware/config.yaml)
// and the first .skillware.yaml of the working directory and its first
// five parents, merged in that order — the tiers come in resolution.order
// (default project, external, bundled; bundled is always searched, last
// unless placed): project is paths.project (auto, the default, is the walk
// above); external is paths.external of every file, then, unless
// legacy.honor_skillware_skill_path is false, SKILLWARE_SKILL_PATH.
//
// A skills folder or .skillware.yaml found by walking up is ignored, with
// a warning, unless it is the user's or root's and others cannot write it
// (see foreign); the roots named in SKILLWARE_SKILL_PATH and configuration
// files are not checked. Relative paths are read from the working
// directory, "~" from HOME. A folder reached twice is searched once, at
// its first place. Configured
// roots that are missing or at the wrong level are reported in Warnings. A
// configuration file that cannot be read or is wrong is an errdefs.Invalid
// error naming FILE:LINE.
func FindRoots(env RootsEnv) (*FoundRoots, error) {
	getenv := env.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	fr := &finder{getenv: getenv, cwd: env.Cwd, seen: map[string]bool{}}
	if fr.cwd != "" {
		if abs, err := filepath.Abs(fr.cwd); err == nil {
			fr.cwd = abs
		}
		fr.realCwd = fr.cwd
		if real, err := filepath.EvalSymlinks(fr.cwd); err == nil {
			fr.realCwd = real
		}
	}
	out := &FoundRoots{HonorSkillPath: true}
	fr.out = out
	var files []*configFile
	if dir := fr.globalConfigDir(); dir != "" {
		out.GlobalConfig = filepath.Join(dir, GlobalConfigFile)
		if isFile(out.GlobalConfig) {
			cf, err := readConfigFile(out.GlobalConfig)
			if err != nil {
				return nil, err
			}
			files = append(files, cf)
		}
	}
	if p := fr.projectConfig(); p != "" {
		out.ProjectConfig = p
		if len(files) == 0 || !sameFile(files[0].path, p) {
			cf, err := readConfigFile(p)
			if err != nil {
				return nil, err
			}
			files = append(files, cf)
		}
	}
	if len(files) == 0 {
		out.Order = legacyOrder
		fr.skillPath()
		fr.walk()
		fr.bundled(env.Bundled)
		return out, nil
	}
	c := mergeConfig(files)
	out.Config, out.Order, out.HonorSkillPath = c, c.Order, c.HonorSkillPath
	out.Warnings = append(out.Warnings, c.Warnings...)
	for _, t := range c.Order {
		switch t {
		case TierProject:
			if c.ProjectAuto() {
				fr.walk()
			} else {
				fr.configured(*c.Project, "paths.project", TierProject)
			}
		case TierExternal:
			for _, e := range c.External {
				fr.configured(e, "paths.external", TierExternal)
			}
			if c.HonorSkillPath {
				fr.skillPath()
			}
		case TierBundled:
			fr.bundled(env.Bundled)
		}
	}
	return out, nil
}

// DefaultRoots returns Skillware's legacy order, reading no configuration
// file: each entry of SKILLWARE_SKILL_PATH, then the skills folders that
// exist in cwd and its first five parents, then bundled if not "".
//
// Deprecated: use FindRoots, which also reads .skillware.yaml and reports
// missing or wrong-level roots.
func DefaultRoots(getenv func(string) string, cwd string, bundled string) []Root {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	fr := &finder{getenv: getenv, cwd: cwd, realCwd: cwd, seen: map[string]bool{}, out: &FoundRoots{}}
	if cwd != "" {
		if abs, err := filepath.Abs(cwd); err == nil {
			fr.cwd, fr.realCwd = abs, abs
		}
		if real, err := filepath.EvalSymlinks(fr.cwd); err == nil {
			fr.realCwd = real
		}
	}
	fr.skillPath()
	fr.walk()
	fr.bundled(bundled)
	var roots []Root
	for _, r := range fr.out.All {
		if r.Exists || r.From.Kind != FromWalk {
			roots = append(roots, r.Root)
		}
	}
	return roots
}

type finder struct {
	getenv       func(string) string
	cwd, realCwd string
	seen         map[string]bool
	out          *FoundRoots
}

// home is the user's home folder from the environment, or "".
func (f *finder) home() string {
	if runtime.GOOS == "windows" {
		return f.getenv("USERPROFILE")
	}
	return f.getenv("HOME")
}

// path makes p absolute the way Skillware does: "~" and "~/..." from HOME,
// relative paths from the working directory. ok is false for a "~" path
// without HOME.
func (f *finder) path(p string) (string, bool) {
	if p == "~" || strings.HasPrefix(p, "~/") || (runtime.GOOS == "windows" && strings.HasPrefix(p, `~\`)) {
		h := f.home()
		if h == "" {
			return p, false
		}
		p = filepath.Join(h, p[1:])
	}
	if !filepath.IsAbs(p) && f.cwd != "" {
		p = filepath.Join(f.cwd, p)
	}
	return filepath.Clean(p), true
}

func (f *finder) globalConfigDir() string {
	if d := strings.TrimSpace(f.getenv(ConfigDirEnv)); d != "" {
		p, _ := f.path(d)
		return p
	}
	if x := strings.TrimSpace(f.getenv("XDG_CONFIG_HOME")); x != "" {
		p, _ := f.path(x)
		return filepath.Join(p, "skillware")
	}
	if runtime.GOOS == "windows" {
		if a := strings.TrimSpace(f.getenv("APPDATA")); a != "" {
			return filepath.Join(a, "skillware")
		}
		if h := f.home(); h != "" {
			return filepath.Join(h, "skillware")
		}
		return ""
	}
	if h := f.home(); h != "" {
		return filepath.Join(h, ".config", "skillware")
	}
	return ""
}

// walkDirs returns the working directory (symlinks resolved, as Skillware
// does) and its first five parents, nearest first.
func (f *finder) walkDirs() []string {
	if f.realCwd == "" {
		return nil
	}
	var dirs []string
	dir := f.realCwd
	for i := 0; i < walkDirs; i++ {
		dirs = append(dirs, dir)
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return dirs
}

// projectConfig returns the first .skillware.yaml of the working
// directory and its parents that is safe to read (see foreign), or "".
func (f *finder) projectConfig() string {
	for _, d := range f.walkDirs() {
		p := filepath.Join(d, ProjectConfigFile)
		if !isFile(p) {
			continue
		}
		if why := foreign(p); why != "" {
			f.out.Warnings = append(f.out.Warnings, fmt.Sprintf("%s is not read: %s, so another user could have written it, adding roots whose skills run without trust; if you trust it, chown it to yourself and make it writable only by you", p, why))
			continue
		}
		return p
	}
	return ""
}

// add appends r unless its folder is already a root. An ignored folder
// is shown but does not count as a root, so that a later entry naming
// it explicitly still makes it one.
func (f *finder) add(r FoundRoot) {
	key := r.Path
	if real, err := filepath.EvalSymlinks(r.Path); err == nil {
		key = real
	}
	if f.seen[key] {
		return
	}
	if !r.Ignored {
		f.seen[key] = true
	}
	f.out.All = append(f.out.All, r)
	if r.Problem != "" {
		f.out.Warnings = append(f.out.Warnings, r.Problem)
	}
}

func (f *finder) skillPath() {
	raw := strings.TrimSpace(f.getenv(SkillPathEnv))
	if raw == "" {
		return
	}
	for _, e := range strings.Split(raw, string(os.PathListSeparator)) {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		src := RootSource{Kind: FromSkillPath, Entry: e}
		p, ok := f.path(e)
		what := fmt.Sprintf("%s entry %s", SkillPathEnv, e)
		if !ok {
			f.add(FoundRoot{Root: Root{Path: p, Tier: TierExternal}, From: src,
				Problem: what + ": HOME is not set, so ~ cannot be expanded (skipped); write the full path"})
			continue
		}
		if p != e {
			what += " (" + p + ")"
		}
		exists, problem := checkRoot(p, what, SkillPathEnv)
		f.add(FoundRoot{Root: Root{Path: p, Tier: TierExternal}, From: src, Exists: exists, Problem: problem})
	}
}

func (f *finder) configured(v ConfigValue, key string, tier Tier) {
	src := RootSource{Kind: FromConfig, Entry: v.Value, File: v.File, Key: key, Line: v.Line}
	what := fmt.Sprintf("%s:%d: %s entry %s", v.File, v.Line, key, v.Value)
	p, ok := f.path(v.Value)
	if !ok {
		f.add(FoundRoot{Root: Root{Path: p, Tier: tier}, From: src,
			Problem: what + ": HOME is not set, so ~ cannot be expanded (skipped); write the full path"})
		return
	}
	if !filepath.IsAbs(v.Value) && !strings.HasPrefix(v.Value, "~") && filepath.Dir(v.File) != f.cwd && filepath.Dir(v.File) != f.realCwd {
		// Skillware reads it from the working directory, not from the
		// file's folder: the same file means other roots elsewhere.
		f.out.Warnings = append(f.out.Warnings, fmt.Sprintf("%s is relative, so it is read from the working directory (%s), not from the folder of %s, as Skillware does; write an absolute path to mean one folder", what, p, filepath.Base(v.File)))
	}
	if p != v.Value {
		what += " (" + p + ")"
	}
	exists, problem := checkRoot(p, what, key)
	f.add(FoundRoot{Root: Root{Path: p, Tier: tier}, From: src, Exists: exists, Problem: problem})
}

// walk adds the skills folders of the working directory and its parents,
// except those another user could have put skills in (see foreign).
func (f *finder) walk() {
	for _, d := range f.walkDirs() {
		p := filepath.Join(d, "skills")
		r := FoundRoot{Root: Root{Path: p, Tier: TierProject}, From: RootSource{Kind: FromWalk, Dir: d}, Exists: isDir(p)}
		if why := foreign(p); r.Exists && why != "" {
			r.Exists, r.Ignored = false, true
			r.Problem = fmt.Sprintf("%s is not searched: %s, so another user could have put skills in it, which would run as project skills without trust; if you trust it, chown it to yourself and make it writable only by you, or name it in %s (its skills are then external)", p, why, SkillPathEnv)
		}
		f.add(r)
	}
}

// foreign says why the skills folder or .skillware.yaml p, found by
// walking up from the working directory, may hold what another user put
// there, or "" if it may be used (or is missing). A folder on the way up
// (a shared /tmp, another user's checkout) is no choice of the operator's,
// unlike the roots they name, and would give its skills the project tier,
// which runs without trust. The rule is ownerRule's, applied to what p
// points to and, if p is a symlink, to the symlink's owner.
func foreign(p string) string {
	li, err := os.Lstat(p)
	if err != nil {
		return ""
	}
	if li.Mode()&fs.ModeSymlink != 0 {
		if uid, _, ok := ownerOf(li); ok && uid != euid() && uid != 0 {
			return fmt.Sprintf("the symlink belongs to %s, not to you or root", userName(uid))
		}
	}
	fi, err := os.Stat(p)
	if err != nil {
		return ""
	}
	uid, mode, ok := ownerOf(fi)
	if !ok {
		return ""
	}
	return ownerRule(uid, mode, euid())
}

// ownerRule says why a folder or file of owner uid and mode bits is not
// safe to take as the user me's own, or "": it must belong to me or to
// root, root's must not be writable by its group, and no one at large
// may write either. A group may write me's own: that group is the user's
// choice (a user-private group, umask 002).
func ownerRule(uid int, mode uint32, me int) string {
	switch {
	case uid != me && uid != 0:
		return fmt.Sprintf("it belongs to %s, not to you or root", userName(uid))
	case mode&0o002 != 0:
		return fmt.Sprintf("anyone may write it (mode %04o)", mode)
	case uid != me && mode&0o020 != 0:
		return fmt.Sprintf("it belongs to root and its group may write it (mode %04o)", mode)
	}
	return ""
}

// userName names uid as "uid N (name)", or "uid N" if it has no name.
func userName(uid int) string {
	if u, err := user.LookupId(fmt.Sprint(uid)); err == nil && u.Username != "" {
		return fmt.Sprintf("uid %d (%s)", uid, u.Username)
	}
	return fmt.Sprintf("uid %d", uid)
}

func (f *finder) bundled(dir string) {
	if dir == "" {
		return
	}
	p, _ := f.path(dir)
	f.add(FoundRoot{Root: Root{Path: p, Tier: TierBundled}, From: RootSource{Kind: FromBundled}, Exists: isDir(p)})
}

// checkRoot says whether the configured root p is a folder, and what is
// wrong with it: missing, not a folder, or a skill or category folder
// where a root (holding <category>/<name>/manifest.yaml) belongs. what
// names the entry; where is the setting to change.
func checkRoot(p, what, where string) (exists bool, problem string) {
	fi, err := os.Stat(p)
	switch {
	case err != nil && os.IsNotExist(err):
		return false, fmt.Sprintf("%s does not exist (skipped); create it or remove it from %s (a root holds <category>/<name>/%s)", what, where, ManifestFile)
	case err != nil:
		return false, fmt.Sprintf("%s cannot be read (skipped): %v", what, err)
	case !fi.IsDir():
		return false, fmt.Sprintf("%s is not a folder (skipped); %s lists roots holding <category>/<name>/%s", what, where, ManifestFile)
	}
	if isSkillDir(p) {
		up := filepath.Dir(filepath.Dir(p))
		id := filepath.Base(filepath.Dir(p)) + "/" + filepath.Base(p)
		return true, fmt.Sprintf("%s is a skill folder (it has %s), not a root, so no skill resolves from it; write %s in %s instead and the skill resolves as %s (or run it by its path)", what, ManifestFile, up, where, id)
	}
	if name, ok := childSkill(p); ok && !hasGrandchildSkill(p) {
		return true, fmt.Sprintf("%s is a category folder (it holds %s/%s), not a root, so its skills do not resolve; write %s in %s instead and they resolve as %s/<name>", what, name, ManifestFile, filepath.Dir(p), where, filepath.Base(p))
	}
	return true, ""
}

// childSkill returns the name of a skill folder directly in dir.
func childSkill(dir string) (string, bool) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", false
	}
	for _, e := range ents {
		if !skipName(e.Name()) && isSkillDir(filepath.Join(dir, e.Name())) {
			return e.Name(), true
		}
	}
	return "", false
}

// hasGrandchildSkill reports whether dir holds <category>/<name>/manifest.yaml.
func hasGrandchildSkill(dir string) bool {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range ents {
		if skipName(e.Name()) {
			continue
		}
		if _, ok := childSkill(filepath.Join(dir, e.Name())); ok {
			return true
		}
	}
	return false
}

func sameFile(a, b string) bool {
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}
