package skillenv

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/pep440"
	"github.com/skillbox-dev/skillbox/policy"
)

// keyVersion changes whenever the layout of an environment or what its key
// covers changes, so that no environment built by an older skillbox is
// taken for a new one.
const keyVersion = "skillbox-env/1"

// Request is what an environment is built from.
type Request struct {
	// Python is the base interpreter's real executable (symlinks
	// resolved); the environment's python links to it.
	Python string
	// PythonVersion is its version ("3.11.2"): a new patch release of the
	// same path makes a new environment.
	PythonVersion string
	// Requirements are the manifest's requirement strings, as written.
	Requirements []string
	// Index is pip's configuration as the operator set it.
	Index Index
	// Sdists lets pip build from source distributions, whose setup
	// scripts run during the build (the operator's opt-in; wheels only
	// otherwise).
	Sdists bool
	// Pinned, when not empty, is a resolved set recorded earlier (a
	// lockfile's, "name==version sha256=HEX" each): the build installs
	// exactly those distributions, each checked against its hash (pip's
	// hash-checking mode, --require-hashes --no-deps), instead of
	// resolving Requirements again. Every entry needs a hash (ParsePinned).
	Pinned []string
	// Target, when not nil, builds the environment for another
	// interpreter than Python, which only runs pip: a folder of
	// pure-Python packages (Target.Site) for the target's Python version,
	// not a virtual environment. Sdists are never built for a target.
	Target *Target
}

// Target is an interpreter an environment is built for that cannot run
// pip itself (Pyodide, in WebAssembly): pip, run by Request.Python,
// installs into a plain folder only wheels that are pure Python and
// compatible with the target's Python version (tags py3-none-any,
// py2.py3-none-any, pyXY-none-any); anything else fails the build,
// naming it.
type Target struct {
	// Name names the target in messages and records ("Pyodide 0.28.0").
	Name string `json:"name"`
	// PythonVersion is the target's Python version ("3.13.2"); pip
	// selects wheels and checks Requires-Python for its X.Y.
	PythonVersion string `json:"python_version"`
}

// Site is the folder of a target environment's packages, relative to the
// environment's folder.
const Site = "site-packages"

// pythonXY is version's "X.Y", or an errdefs.Invalid error.
func pythonXY(version string) (string, error) {
	parts := strings.Split(version, ".")
	if len(parts) < 2 || parts[0] == "" || parts[1] == "" || strings.Trim(parts[0]+parts[1], "0123456789") != "" {
		return "", errdefs.New(errdefs.Invalid, "target Python version %q: want X.Y[.Z]", version)
	}
	return parts[0] + "." + parts[1], nil
}

// PinnedLine is one entry of Request.Pinned, parsed.
type PinnedLine struct {
	Name, Version string
	// SHA256 is the hex digest of the distribution's archive.
	SHA256 string
}

// Requirement is the entry as a line of a pip requirements file in
// hash-checking mode.
func (p PinnedLine) Requirement() string {
	return p.Name + "==" + p.Version + " --hash=sha256:" + p.SHA256
}

// ParsePinned parses a recorded set ("name==version sha256=HEX" each, as
// lockfiles and trust entries hold it), sorted by name. An entry without a
// sha256 hash (pip reports none for a package installed from a local
// folder) cannot be installed in hash-checking mode: an errdefs.Invalid
// error naming it.
func ParsePinned(set []string) ([]PinnedLine, error) {
	out := make([]PinnedLine, 0, len(set))
	for _, x := range set {
		nv, hash, _ := strings.Cut(strings.TrimSpace(x), " ")
		name, version, ok := strings.Cut(nv, "==")
		if !ok || name == "" || version == "" || pep440.Normalize(name) != name || strings.ContainsAny(version, " \t;#") {
			return nil, errdefs.New(errdefs.Invalid, "recorded package %q: want name==version sha256=HEX", x)
		}
		if _, err := pep440.ParseVersion(version); err != nil {
			return nil, errdefs.New(errdefs.Invalid, "recorded package %q: version: %v", x, err)
		}
		hash = strings.TrimSpace(hash)
		if hash == "" {
			return nil, errdefs.New(errdefs.Invalid, "recorded package %s has no hash (pip reported none: was it installed from a local folder?), so it cannot be installed in pip's hash-checking mode", nv)
		}
		hex, ok := strings.CutPrefix(hash, "sha256=")
		if !ok || len(hex) != 64 || strings.Trim(hex, "0123456789abcdef") != "" {
			return nil, errdefs.New(errdefs.Invalid, "recorded package %q: want a hash sha256=<64 lower-case hex digits>", x)
		}
		out = append(out, PinnedLine{Name: name, Version: version, SHA256: hex})
	}
	slices.SortFunc(out, func(a, b PinnedLine) int { return strings.Compare(a.Name, b.Name) })
	for i := 1; i < len(out); i++ {
		if out[i].Name == out[i-1].Name {
			return nil, errdefs.New(errdefs.Invalid, "recorded set names %s twice", out[i].Name)
		}
	}
	return out, nil
}

// Normalized returns the requirements in canonical spelling (PEP 503 names,
// specifiers as pep440 writes them), sorted and without duplicates, or an
// errdefs.Invalid error naming the first one that does not parse.
func Normalized(reqs []string) ([]string, error) {
	out := make([]string, 0, len(reqs))
	for _, r := range reqs {
		p, err := pep440.ParseRequirement(r)
		if err != nil {
			return nil, errdefs.New(errdefs.Invalid, "requirement %q: %v", r, err)
		}
		p.Name = p.Normalized
		for i, e := range p.Extras {
			p.Extras[i] = pep440.Normalize(e)
		}
		slices.Sort(p.Extras)
		out = append(out, p.String())
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// Key identifies the environment req builds: a digest of the interpreter,
// the normalised requirements, pip's configuration, the sdist choice, the
// pinned set (with its hashes) when there is one, and the target when
// there is one (an environment for Pyodide never shares a key with one for
// the interpreter that built it).
// Skills whose requests have the same key share one environment.
func (req Request) Key() (string, error) {
	reqs, err := Normalized(req.Requirements)
	if err != nil {
		return "", err
	}
	var pinned []string
	if len(req.Pinned) > 0 {
		lines, err := ParsePinned(req.Pinned)
		if err != nil {
			return "", err
		}
		for _, l := range lines {
			pinned = append(pinned, l.Requirement())
		}
	}
	// Pinned and Target are left out when empty, so that the key of an
	// unpinned request for Python is what it was before they existed.
	if req.Target != nil {
		if _, err := pythonXY(req.Target.PythonVersion); err != nil {
			return "", err
		}
	}
	b, err := json.Marshal(struct {
		Version       string   `json:"v"`
		Python        string   `json:"python"`
		PythonVersion string   `json:"python_version"`
		Requirements  []string `json:"requirements"`
		Index         string   `json:"index"`
		Sdists        bool     `json:"sdists"`
		Pinned        []string `json:"pinned,omitempty"`
		Target        *Target  `json:"target,omitempty"`
	}{keyVersion, req.Python, req.PythonVersion, reqs, req.Index.digest(), req.Sdists && req.Target == nil, pinned, req.Target})
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// dirName is the folder name of the environment with key.
func dirName(key string) string { return strings.TrimPrefix(key, "sha256:")[:32] }

// pipVars are the environment variables of pip's own configuration that
// decide where packages come from (pip reads every PIP_<OPTION>; these are
// the ones that name sources, and the ones a build passes on).
var pipVars = []string{
	"PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_NO_INDEX",
	"PIP_TRUSTED_HOST", "PIP_CERT", "PIP_CLIENT_CERT", "PIP_PRE",
	"PIP_ONLY_BINARY", "PIP_NO_BINARY", "PIP_CONSTRAINT", "PIP_DEFAULT_TIMEOUT",
}

// Index is pip's configuration as the operator set it: the PIP_* variables
// that name sources, and the configuration files pip reads (pip.conf), by
// path and content. skillbox never interprets the files: pip does, inside
// the build; the key changes whenever any of them does.
type Index struct {
	// Vars are the set PIP_* variables of pipVars, "NAME=VALUE".
	Vars []string `json:"vars,omitempty"`
	// Locate are the variables by which pip finds its configuration files
	// (HOME, XDG_CONFIG_HOME, XDG_CONFIG_DIRS, PIP_CONFIG_FILE), as set: a
	// build gets them, and the files at the same paths, so that its pip
	// reads what the operator's would.
	Locate []string `json:"locate,omitempty"`
	// Files are the configuration files that exist, in pip's order of
	// precedence (lowest first), with a digest of their content.
	Files []ConfigFile `json:"files,omitempty"`
}

// ConfigFile is one pip configuration file.
type ConfigFile struct {
	Path   string `json:"path"`
	Digest string `json:"digest"`
}

// IndexFromEnv reads pip's configuration as pip finds it for a build run
// by this user (pip's Configuration on Linux): the PIP_* variables, and the
// files pip reads, lowest precedence first — global
// ($XDG_CONFIG_DIRS/pip/pip.conf, /etc/pip.conf), then user
// (~/.pip/pip.conf, $XDG_CONFIG_HOME/pip/pip.conf) unless $PIP_CONFIG_FILE
// names a file that exists, then $PIP_CONFIG_FILE; $PIP_CONFIG_FILE set to
// os.devnull means no file at all. A file that exists but cannot be read
// is an error: the build would not see what the operator configured.
func IndexFromEnv(getenv func(string) string) (Index, error) {
	var idx Index
	for _, v := range pipVars {
		if val := getenv(v); val != "" {
			idx.Vars = append(idx.Vars, v+"="+val)
		}
	}
	for _, v := range []string{"HOME", "XDG_CONFIG_HOME", "XDG_CONFIG_DIRS", "PIP_CONFIG_FILE"} {
		if val := getenv(v); val != "" {
			idx.Locate = append(idx.Locate, v+"="+val)
		}
	}
	for _, p := range configPaths(getenv) {
		data, err := os.ReadFile(p)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return Index{}, errdefs.Wrap(errdefs.Unavailable, err, "pip configuration")
		}
		sum := sha256.Sum256(data)
		idx.Files = append(idx.Files, ConfigFile{Path: p, Digest: hex.EncodeToString(sum[:])})
	}
	return idx, nil
}

// configPaths are the configuration files pip may read, lowest precedence
// first; see IndexFromEnv.
func configPaths(getenv func(string) string) []string {
	env := getenv("PIP_CONFIG_FILE")
	if env == os.DevNull {
		return nil
	}
	var paths []string
	dirs := getenv("XDG_CONFIG_DIRS")
	if dirs == "" {
		dirs = "/etc/xdg"
	}
	for _, d := range filepath.SplitList(dirs) {
		if filepath.IsAbs(d) {
			paths = append(paths, filepath.Join(d, "pip", "pip.conf"))
		}
	}
	paths = append(paths, "/etc/pip.conf")
	if _, err := os.Stat(env); env == "" || err != nil {
		home := getenv("HOME")
		if home != "" {
			paths = append(paths, filepath.Join(home, ".pip", "pip.conf"))
		}
		cfg := getenv("XDG_CONFIG_HOME")
		if cfg == "" && home != "" {
			cfg = filepath.Join(home, ".config")
		}
		if cfg != "" {
			paths = append(paths, filepath.Join(cfg, "pip", "pip.conf"))
		}
	}
	if env != "" {
		paths = append(paths, env)
	}
	return paths
}

// digest is the part of the key that the configuration contributes.
func (idx Index) digest() string {
	b, _ := json.Marshal(idx)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Redacted is idx with the user information of every URL in its Vars
// (PIP_INDEX_URL=https://user:token@host/...) replaced by "***": what an
// environment's record (inside the environment, which its skill's jail
// shows) and messages hold. The credentials are the operator's, for pip.
func (idx Index) Redacted() Index {
	out := idx
	out.Vars = nil
	for _, v := range idx.Vars {
		out.Vars = append(out.Vars, RedactURLs(v))
	}
	return out
}

// RedactURLs replaces the user information (user:password@) of every URL
// in s with "***", so that a private index's credentials are not quoted.
func RedactURLs(s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "://")
		if i < 0 {
			break
		}
		b.WriteString(s[:i+3])
		s = s[i+3:]
		end := strings.IndexAny(s, "/?# \t\r\n,;'\"")
		if end < 0 {
			end = len(s)
		}
		if at := strings.LastIndexByte(s[:end], '@'); at >= 0 {
			b.WriteString("***")
			s = s[at:]
		}
	}
	b.WriteString(s)
	return b.String()
}

// String describes the configuration for messages, without credentials
// (Redacted).
func (idx Index) String() string {
	if len(idx.Vars) == 0 && len(idx.Files) == 0 {
		return "pip's defaults"
	}
	var parts []string
	parts = append(parts, idx.Redacted().Vars...)
	for _, f := range idx.Files {
		parts = append(parts, f.Path)
	}
	return strings.Join(parts, ", ")
}

// BoundsOf are the limits of an environment build under pol: its
// env_build section's, every limit it does not set (all, for a nil
// policy) at its default.
func BoundsOf(pol *policy.Policy) Bounds {
	var l policy.EnvBuildLimits
	if pol != nil {
		l = pol.EnvBuild
	}
	return Bounds{MaxMemory: l.Memory, MaxPids: l.Pids, MaxBytes: l.Size, ScratchBytes: l.Scratch, Timeout: l.Timeout}.WithDefaults()
}

// digestVersion changes whenever what Digest covers changes.
const digestVersion = "skillbox-env-digest/1"

// Digest identifies what e holds: a digest of its key (interpreter,
// requirements, pip's configuration, sdists, pinned set, target) and of
// the set pip installed, each distribution's archive hash included
// ("name==version sha256=HEX", sorted; a distribution pip reported no
// hash for, one installed from a local folder, counts by name and version
// only). It is what trusted_environments lists: a key names what an
// environment is built from, and the same key rebuilt (after a prune, on
// another host) installs whatever the index serves then, so trusting a
// key would trust releases nobody reviewed. Two builds of one key that
// install the same distributions have the same digest.
func (e *Env) Digest() string {
	set := make([]string, 0, len(e.Resolved))
	for _, p := range e.Resolved {
		x := p.String()
		if p.Hash != "" {
			x += " " + p.Hash
		}
		set = append(set, x)
	}
	slices.Sort(set)
	b, _ := json.Marshal(struct {
		Version  string   `json:"v"`
		Key      string   `json:"key"`
		Resolved []string `json:"resolved"`
	}{digestVersion, e.Key, set})
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
