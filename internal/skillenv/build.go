package skillenv

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/pep440"
	"github.com/skillbox-dev/skillbox/skill"
)

// buildScript is the program a build runs as pid 1 of its jail.
//
//go:embed build.py
var buildScript string

// Defaults of a build's bounds.
const (
	DefaultMaxBytes = 2 << 30 // the environment's tmpfs
	DefaultMaxFiles = 200_000
	DefaultTimeout  = 10 * time.Minute
	// DefaultScratchBytes is the build's scratch tmpfs (HOME, TMPDIR):
	// pip keeps every archive it downloaded there until it installs them,
	// and an sdist's build tree, so it must hold the sum of the compressed
	// archives; 512 MiB covers all but the largest (raise it in Bounds for
	// those). It was as large as the environment's tmpfs before, which let
	// a build pin twice that in RAM.
	DefaultScratchBytes = 512 << 20
	// DefaultMaxMemory caps the build's memory cgroup: every process of
	// the build and the pages of both its tmpfs, which are charged to the
	// cgroup of the process that writes them. It exceeds DefaultMaxBytes so
	// that an environment that fills its tmpfs still leaves pip room.
	DefaultMaxMemory = 3 << 30
	// DefaultMaxPids caps the build's processes plus threads (pids
	// cgroup): pip and a compiler's jobs need tens, a fork bomb thousands.
	DefaultMaxPids = 512
)

// PipWheels are where Debian's python3-pip-whl puts pip's wheel: skillbox
// runs that pip, from the zip, never one a skill or an environment brings.
var PipWheels = "/usr/share/python-wheels"

// PipWheel returns the newest pip wheel in PipWheels, or an
// errdefs.Unavailable error saying how to install it.
func PipWheel() (string, error) {
	m, _ := filepath.Glob(filepath.Join(PipWheels, "pip-*-py3-none-any.whl"))
	if len(m) == 0 {
		return "", errdefs.New(errdefs.Unavailable, "no pip wheel in %s, which building a skill's environment needs: install Debian's python3-pip-whl (apt-get install python3-pip-whl)", PipWheels)
	}
	slices.SortFunc(m, func(a, b string) int { return compareWheelVersions(a, b) })
	return m[len(m)-1], nil
}

func compareWheelVersions(a, b string) int {
	va, erra := pep440.ParseVersion(strings.Split(filepath.Base(a), "-")[1])
	vb, errb := pep440.ParseVersion(strings.Split(filepath.Base(b), "-")[1])
	if erra != nil || errb != nil {
		return strings.Compare(a, b)
	}
	return va.Compare(vb)
}

// Job is one build, as a Builder runs it.
type Job struct {
	// Argv runs the build script with the base interpreter, in isolated
	// mode; the script gets the descriptor of Out at OutFD.
	Argv []string
	// Stdin is what the script reads on its standard input: its spec (a
	// JSON object), which may be longer than the kernel lets one argument
	// be (128 KiB), as a long list of requirements makes it.
	Stdin []byte
	// Env is the build's whole environment.
	Env []string
	// Dir is the environment's final path: the Builder mounts an empty
	// tmpfs of MaxBytes there, the only place the build can write besides
	// its scratch space.
	Dir      string
	MaxBytes int64
	// Out is the host folder that receives the environment, open; the
	// script finds it at descriptor OutFD.
	Out   *os.File
	OutFD int
	// ReadOnly are host paths the build reads at the same paths: the pip
	// wheel, pip's configuration files, local find-links folders.
	ReadOnly []string
	// Sources are the index URLs pip may fetch from; a Builder gives the
	// build network access to exactly their hosts, through its egress
	// proxy.
	Sources []string
	Timeout time.Duration
	// ScratchBytes caps the scratch tmpfs; MaxMemory and MaxPids are the
	// limits of the control group the build runs in (the Builder refuses
	// the build when the host has no such controller, unless told to run
	// best-effort). Zero means the Default.
	ScratchBytes int64
	MaxMemory    int64
	MaxPids      int
}

// A Builder runs a build job inside a jail and returns what the script
// printed on stdout. pip's output (stderr) goes to progress.
type Builder interface {
	Build(ctx context.Context, job Job, progress func(line string)) ([]byte, error)
}

// pipArgs are pip install's arguments for req. With a pinned set (pinned
// not empty) the requirements are not given: the build script writes
// pinned, lines of a requirements file in hash-checking mode, to a file
// and gives pip that (-r), with --require-hashes (every distribution must
// match its recorded hash) and --no-deps (nothing is resolved: the set is
// already whole).
//
// For a Target, pip installs into dir's Site folder (--target) only wheels
// whose tags the target accepts: --platform any --abi none --implementation
// py --python-version X.Y admit exactly py3-none-any, py2.py3-none-any and
// pyXY-none-any for XY up to the target's, and pip refuses sdists with
// such options (--only-binary :all:, whatever Sdists says). Bytecode is
// not compiled: the build's interpreter is not the target's.
func pipArgs(req Request, reqs []string, pinned []PinnedLine, dir string) ([]string, error) {
	args := []string{
		"--no-cache-dir", "--disable-pip-version-check", "--no-input",
		"--progress-bar", "off", "--no-warn-script-location",
		"--require-virtualenv",
	}
	if t := req.Target; t != nil {
		xy, err := pythonXY(t.PythonVersion)
		if err != nil {
			return nil, err
		}
		args = append(args, "--target", filepath.Join(dir, Site), "--no-compile",
			"--platform", "any", "--abi", "none", "--implementation", "py", "--python-version", xy)
	}
	if !req.Sdists || req.Target != nil {
		args = append(args, "--only-binary", ":all:")
	}
	if len(pinned) > 0 {
		return append(args, "--require-hashes", "--no-deps"), nil
	}
	return append(args, reqs...), nil
}

// job prepares the build of req into out, for the environment at dir.
func job(req Request, reqs []string, dir string, out *os.File, pip string, src sources, b Bounds) (Job, error) {
	const outFD = 3
	pinned, err := ParsePinned(req.Pinned)
	if err != nil {
		return Job{}, err
	}
	lines := make([]string, 0, len(pinned))
	for _, p := range pinned {
		lines = append(lines, p.Requirement())
	}
	args, err := pipArgs(req, reqs, pinned, dir)
	if err != nil {
		return Job{}, err
	}
	spec := map[string]any{
		"dir": dir, "out_fd": outFD, "pip": pip, "args": args, "max_files": b.MaxFiles,
		"max_bytes": b.MaxBytes, "max_bytes_text": skill.FormatSize(b.MaxBytes),
		"requirements_file": lines,
	}
	if req.Target != nil {
		spec["target"] = map[string]string{"name": req.Target.Name, "site": filepath.Join(dir, Site)}
	}
	specJSON, err := json.Marshal(spec)
	if err != nil {
		return Job{}, err
	}
	env := append(slices.Clone(req.Index.Vars), "PATH=/usr/bin:/bin", "LANG=C.UTF-8", "PYTHONDONTWRITEBYTECODE=1")
	env = append(env, req.Index.Locate...)
	ro := []string{pip}
	for _, f := range req.Index.Files {
		ro = append(ro, f.Path)
	}
	ro = append(ro, src.paths...)
	return Job{
		Argv: []string{req.Python, "-I", "-S", "-c", buildScript}, Stdin: specJSON,
		Env: env, Dir: dir, MaxBytes: b.MaxBytes, Out: out, OutFD: outFD,
		ReadOnly: ro, Sources: src.urls, Timeout: b.Timeout,
		ScratchBytes: b.ScratchBytes, MaxMemory: b.MaxMemory, MaxPids: b.MaxPids,
	}, nil
}

// Listed is reqs joined by sep for a message, clipped: each requirement
// to 120 bytes, and the list to those that fit in about 600, then "and N
// more". A manifest may declare 256 requirements of up to 1024 bytes
// each; a message that repeated them all would drown the reason it gives.
func Listed(reqs []string, sep string) string {
	const each, all = 120, 600
	var b strings.Builder
	for i, r := range reqs {
		if len(r) > each {
			r = clipUTF8(r, each-3) + "..."
		}
		if i > 0 && b.Len()+len(sep)+len(r) > all {
			fmt.Fprintf(&b, "%sand %d more", sep, len(reqs)-i)
			break
		}
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(r)
	}
	return b.String()
}

// clipUTF8 is s cut to at most n bytes, on a character boundary.
func clipUTF8(s string, n int) string {
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Bounds cap one build.
type Bounds struct {
	MaxBytes int64
	MaxFiles int
	Timeout  time.Duration
	// ScratchBytes is the scratch tmpfs's size.
	ScratchBytes int64
	// MaxMemory is the build's memory limit, both tmpfs' pages included,
	// and MaxPids its limit on processes plus threads.
	MaxMemory int64
	MaxPids   int
}

// WithDefaults returns b with every unset (zero) bound at its Default.
func (b Bounds) WithDefaults() Bounds {
	if b.MaxBytes <= 0 {
		b.MaxBytes = DefaultMaxBytes
	}
	if b.MaxFiles <= 0 {
		b.MaxFiles = DefaultMaxFiles
	}
	if b.Timeout <= 0 {
		b.Timeout = DefaultTimeout
	}
	if b.ScratchBytes <= 0 {
		b.ScratchBytes = DefaultScratchBytes
	}
	if b.MaxMemory <= 0 {
		b.MaxMemory = DefaultMaxMemory
	}
	if b.MaxPids <= 0 {
		b.MaxPids = DefaultMaxPids
	}
	return b
}

// Package is one distribution pip installed.
type Package struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Hash is the archive's hash as pip reports it ("sha256=..."), empty
	// for a package built from a local folder.
	Hash string `json:"hash,omitempty"`
}

func (p Package) String() string { return p.Name + "==" + p.Version }

// parseResult reads the build script's stdout: pip's installation report
// (the resolved set), or the script's error.
func parseResult(out []byte) ([]Package, error) {
	var res struct {
		Error  string `json:"error"`
		Report *struct {
			Install []struct {
				Metadata struct {
					Name    string `json:"name"`
					Version string `json:"version"`
				} `json:"metadata"`
				DownloadInfo struct {
					ArchiveInfo struct {
						Hash   string            `json:"hash"`
						Hashes map[string]string `json:"hashes"`
					} `json:"archive_info"`
				} `json:"download_info"`
			} `json:"install"`
		} `json:"report"`
	}
	line := bytes.TrimSpace(out)
	if i := bytes.LastIndexByte(line, '\n'); i >= 0 {
		line = line[i+1:]
	}
	if err := json.Unmarshal(line, &res); err != nil {
		return nil, fmt.Errorf("the build printed no result (%v)", err)
	}
	if res.Error != "" {
		return nil, errors.New(res.Error)
	}
	if res.Report == nil {
		return nil, errors.New("the build printed no report")
	}
	pkgs := make([]Package, 0, len(res.Report.Install))
	for _, in := range res.Report.Install {
		p := Package{Name: pep440.Normalize(in.Metadata.Name), Version: in.Metadata.Version}
		if p.Name == "" || p.Version == "" {
			return nil, errors.New("pip's report names a package without a name or version")
		}
		ai := in.DownloadInfo.ArchiveInfo
		if h := ai.Hashes["sha256"]; h != "" {
			p.Hash = "sha256=" + h
		} else {
			p.Hash = ai.Hash
		}
		pkgs = append(pkgs, p)
	}
	slices.SortFunc(pkgs, func(a, b Package) int { return strings.Compare(a.Name, b.Name) })
	return pkgs, nil
}
