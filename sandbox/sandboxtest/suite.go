// Package sandboxtest is the conformance suite every sandbox driver runs:
// the same functional calls and the same attack corpus against each
// backend (modelled on containerd's snapshots testsuite).
//
// A backend's test calls [Run] with its driver and [Options] describing what
// the driver claims to enforce (usually derived from Probe with
// [OptionsFromProbe]). The functional part checks the call contract (results,
// skill errors, timeouts, limits, captured output, single-use vs session).
// The attack part, only for isolating drivers, runs every malicious skill in
// testdata/attacks of the repository and asserts containment on the host
// side: canaries never leak, host listeners see nothing, host files, mounts,
// interfaces and processes are unchanged. After it, the suite checks that no
// process, mount, cgroup or descriptor of the test process was leaked.
package sandboxtest

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/sandbox"
)

//go:embed testdata/skills
var skillsFS embed.FS

// Options say what the driver under test is expected to do.
type Options struct {
	// Isolating runs the attack corpus. Drivers that isolate nothing
	// (process) leave it false and the attacks are skipped with a reason.
	Isolating bool
	// Features the driver enforces on this host; assertions that depend on
	// a feature the driver does not claim are skipped with a reason.
	Features []sandbox.Feature
	// Session says the driver supports sandbox.ModeSession.
	Session bool
	// Python is put in every Spec ("" lets the backend choose).
	Python string
	// CorpusDir is the attack corpus; "" finds testdata/attacks of the
	// module this package is built from.
	CorpusDir string
	// Limits override the suite's small defaults field by field.
	Limits sandbox.Limits
	// Grace is how long past Limits.Timeout a call may take to end (kill,
	// reap, report); 0 means 3s.
	Grace time.Duration
	// AdjustSpec, when set, edits every Spec before Open (for example to
	// set BestEffort or Require).
	AdjustSpec func(*sandbox.Spec)
	// NoHostChecks disables the final leak checks (processes, mounts,
	// cgroups, descriptors), for hosts where another process shares them.
	NoHostChecks bool
	// Emulated says the skill's Python is not a host process but runs on
	// an emulated operating system (WebAssembly: Pyodide on Deno). Its
	// system calls are answered by an in-memory emulation (file system,
	// made-up DNS answers, no fork or threads, no raw system calls), so a
	// probe can "succeed" against the emulation without touching the host.
	// The few attack assertions that read such a success as an escape
	// then check the host instead (see attacks_linux.go); every host-side
	// check is kept.
	Emulated bool
	// AttackClasses, when set, limits the attack corpus to these classes
	// (its top-level folders: "secrets", "write", "net", ...); the other
	// attacks are skipped, saying so. Empty runs every class.
	AttackClasses []string
	// KnownGaps are attacks (by name, "write/scratch-exec") the driver is
	// documented not to contain, each with the reason: they are skipped,
	// saying so, rather than run to fail.
	KnownGaps map[string]string
}

// OptionsFromProbe derives Options from what d.Probe says it enforces.
func OptionsFromProbe(ctx context.Context, d sandbox.Driver) Options {
	c := d.Probe(ctx)
	return Options{Isolating: c.Isolating, Features: slices.Clone(c.Enforces), Session: true}
}

// Has reports whether the driver claims feature f.
func (o Options) Has(f sandbox.Feature) bool { return slices.Contains(o.Features, f) }

// Suite defaults: small so that limit tests are fast.
const (
	DefaultTimeout = 5 * time.Second
	DefaultMemory  = 128 << 20
	DefaultPids    = 32
	DefaultOutput  = 256 << 10
	DefaultStdio   = 16 << 10
)

// limits returns the suite limits with the caller's overrides applied.
func (o Options) limits() sandbox.Limits {
	l := sandbox.Limits{Timeout: DefaultTimeout, Memory: DefaultMemory, Pids: DefaultPids,
		Output: DefaultOutput, Stdio: DefaultStdio}
	if o.Limits.Timeout > 0 {
		l.Timeout = o.Limits.Timeout
	}
	if o.Limits.Memory > 0 {
		l.Memory = o.Limits.Memory
	}
	if o.Limits.Pids > 0 {
		l.Pids = o.Limits.Pids
	}
	if o.Limits.Output > 0 {
		l.Output = o.Limits.Output
	}
	if o.Limits.Stdio > 0 {
		l.Stdio = o.Limits.Stdio
	}
	if o.Limits.CPU > 0 {
		l.CPU = o.Limits.CPU
	}
	return l
}

func (o Options) grace() time.Duration {
	if o.Grace > 0 {
		return o.Grace
	}
	return 3 * time.Second
}

// Run runs the whole suite against d: Functional, then Attacks, then the
// host leak checks.
func Run(t *testing.T, d sandbox.Driver, opts Options) {
	t.Helper()
	var before *hostState
	t.Run("Functional", func(t *testing.T) {
		RunFunctional(t, d, opts)
	})
	// The leak baseline is taken after a warm-up call so that anything the
	// driver opens once per process (caches, probes) is not counted.
	if !opts.NoHostChecks {
		warmUp(t, d, opts)
		before = snapshotHost(t)
	}
	t.Run("Attacks", func(t *testing.T) {
		RunAttacks(t, d, opts)
	})
	if before != nil {
		t.Run("HostUnharmed", func(t *testing.T) {
			checkHost(t, before)
		})
	}
}

func warmUp(t *testing.T, d sandbox.Driver, opts Options) {
	dir := FunctionalSkill(t, "hello")
	sb, err := d.Open(context.Background(), SpecFor(dir, opts))
	if err != nil {
		t.Logf("warm-up Open: %v", err)
		return
	}
	_, _ = sb.Call(context.Background(), sandbox.Request{Params: json.RawMessage(`{}`)})
	_ = sb.Close()
}

// SpecFor returns a Spec for the bundle in dir with the suite's limits,
// single-use mode and a minimal manifest ({"name": <folder name>}).
func SpecFor(dir string, opts Options) sandbox.Spec {
	name := filepath.Base(dir)
	m, _ := json.Marshal(map[string]any{"name": name, "version": "0.1.0", "parameters": map[string]any{"type": "object"}})
	s := sandbox.Spec{
		SkillID:   "sandboxtest/" + name,
		Digest:    "sha256:" + strings.Repeat("0", 64),
		BundleDir: dir,
		Manifest:  m,
		Python:    opts.Python,
		Limits:    opts.limits(),
		Mode:      sandbox.ModeSingleUse,
	}
	if opts.AdjustSpec != nil {
		opts.AdjustSpec(&s)
	}
	return s
}

// FunctionalSkill writes the embedded conformance skill name into a fresh
// temporary directory and returns the bundle path.
func FunctionalSkill(t testing.TB, name string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), name)
	src := "testdata/skills/" + name
	err := fs.WalkDir(skillsFS, src, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p, src), "/")
		out := filepath.Join(dst, filepath.FromSlash(rel))
		if de.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		b, err := skillsFS.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(out, b, 0o644)
	})
	if err != nil {
		t.Fatalf("materialise skill %s: %v", name, err)
	}
	return dst
}

// CorpusDir returns the attack corpus directory: opts.CorpusDir, or
// testdata/attacks at the root of the module this file belongs to.
func CorpusDir(opts Options) (string, error) {
	if opts.CorpusDir != "" {
		return opts.CorpusDir, nil
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot locate sandboxtest source")
	}
	dir := filepath.Join(filepath.Dir(file), "..", "..", "testdata", "attacks")
	if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("attack corpus: %w (set Options.CorpusDir)", err)
	}
	return filepath.Clean(dir), nil
}

// CopyDir copies the regular files and directories of src into dst (which
// must not exist). Symlinks are not followed nor copied.
func CopyDir(src, dst string) error {
	return filepath.WalkDir(src, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		switch {
		case de.IsDir():
			if de.Name() == "__pycache__" {
				return filepath.SkipDir
			}
			return os.MkdirAll(out, 0o755)
		case de.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(out, b, 0o644)
		}
		return nil
	})
}

// Open opens spec on d, failing the test on error, and closes the sandbox
// at cleanup.
func Open(t testing.TB, d sandbox.Driver, spec sandbox.Spec) sandbox.Sandbox {
	t.Helper()
	sb, err := d.Open(context.Background(), spec)
	if err != nil {
		t.Fatalf("Open(%s): %v", spec.SkillID, err)
	}
	t.Cleanup(func() {
		if err := sb.Close(); err != nil {
			t.Errorf("Close(%s): %v", spec.SkillID, err)
		}
	})
	return sb
}

// Call runs one call with params (marshalled to JSON) and config, bounded
// by a context of timeout+grace+5s so that a hanging backend fails the
// test instead of blocking it. It returns the result, the error and the
// elapsed time.
func Call(t testing.TB, sb sandbox.Sandbox, opts Options, params any, config map[string]string) (*sandbox.Result, error, time.Duration) {
	t.Helper()
	p := marshalParams(t, params)
	ctx, cancel := context.WithTimeout(context.Background(), callBound(opts))
	defer cancel()
	c, hung := callUnder(ctx, sb, p, config)
	if hung {
		t.Fatalf("Call did not return %v after its context expired: the backend hangs", hangSlack)
	}
	return c.res, c.err, c.elapsed
}

// callBound is the deadline Call gives one call: its timeout, the grace to
// end it, and 5s more.
func callBound(opts Options) time.Duration {
	return opts.limits().Timeout + opts.grace() + 5*time.Second
}

// hangSlack is how long past its context's deadline a call may take to
// return before the suite calls the backend hung.
const hangSlack = 5 * time.Second

// marshalParams encodes a call's params (nil is {}).
func marshalParams(t testing.TB, params any) json.RawMessage {
	t.Helper()
	if params == nil {
		return json.RawMessage(`{}`)
	}
	p, err := json.Marshal(params)
	if err != nil {
		t.Fatalf("marshal params: %v", err)
	}
	return p
}

// called is what one call returned, and after how long.
type called struct {
	res     *sandbox.Result
	err     error
	elapsed time.Duration
}

// callUnder runs one call under ctx, which must have a deadline, and waits
// for it until hangSlack past that deadline; hung says it had not returned
// by then. It fails nothing itself, so any goroutine may use it.
func callUnder(ctx context.Context, sb sandbox.Sandbox, params json.RawMessage, config map[string]string) (c called, hung bool) {
	dl, ok := ctx.Deadline()
	if !ok {
		panic("sandboxtest: callUnder needs a context with a deadline")
	}
	ch := make(chan called, 1)
	start := time.Now()
	go func() {
		r, e := sb.Call(ctx, sandbox.Request{Params: params, Config: config})
		ch <- called{r, e, time.Since(start)}
	}()
	wait := time.NewTimer(time.Until(dl) + hangSlack)
	defer wait.Stop()
	select {
	case c := <-ch:
		return c, false
	case <-wait.C:
		return called{}, true
	}
}

// openAndCall opens spec on d and makes one call with empty params,
// both bounded against a hang; an error from Open ends it there. It
// returns the call's result and error (Open's error, if Open failed).
func openAndCall(t testing.TB, d sandbox.Driver, spec sandbox.Spec, opts Options) (*sandbox.Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callBound(opts))
	defer cancel()
	sb, err := d.Open(ctx, spec)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = sb.Close() })
	c, hung := callUnder(ctx, sb, json.RawMessage(`{}`), nil)
	if hung {
		t.Fatalf("Call did not return %v after its context expired: the backend hangs", hangSlack)
	}
	return c.res, c.err
}

// printed is what the skill printed before its call failed with err: the
// Result's output when the call returned one, else what err carries
// (errdefs.Output; a failure before the call, such as Open's).
func printed(res *sandbox.Result, err error) (stdout, stderr []byte) {
	if res != nil && len(res.Stdout)+len(res.Stderr) > 0 {
		return res.Stdout, res.Stderr
	}
	return errdefs.Output(err)
}

// MustResult fails the test unless err is nil, and decodes the value into v
// (when v is not nil).
func MustResult(t testing.TB, res *sandbox.Result, err error, v any) {
	t.Helper()
	if err != nil {
		t.Fatalf("call failed: %v (kind %s)", err, errdefs.KindOf(err))
	}
	if res == nil {
		t.Fatal("call returned neither result nor error")
	}
	if v != nil {
		if err := json.Unmarshal(res.Value, v); err != nil {
			t.Fatalf("decode result %.200q: %v", res.Value, err)
		}
	}
}

// AssertKind fails unless err is of kind k.
func AssertKind(t testing.TB, err error, k errdefs.Kind) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want kind %s", k)
	}
	if got := errdefs.KindOf(err); got != k {
		t.Fatalf("got error kind %s (%v), want %s", got, err, k)
	}
}

// AssertSkillError fails unless err is an *errdefs.SkillError of type typ
// (any type when typ is "") and returns it.
func AssertSkillError(t testing.TB, err error, typ string) *errdefs.SkillError {
	t.Helper()
	var se *errdefs.SkillError
	if !errors.As(err, &se) {
		t.Fatalf("got %v (kind %s), want a SkillError %s", err, errdefs.KindOf(err), typ)
	}
	if !errors.Is(err, errdefs.ErrSkill) || errdefs.KindOf(err) != errdefs.Skill {
		t.Errorf("SkillError does not classify as kind skill: %v", err)
	}
	if typ != "" && se.Type != typ {
		t.Fatalf("SkillError type %q (%v), want %q", se.Type, se, typ)
	}
	return se
}

// AssertLimit fails unless err is an *errdefs.LimitError naming resource.
func AssertLimit(t testing.TB, err error, resource string) *errdefs.LimitError {
	t.Helper()
	var le *errdefs.LimitError
	if !errors.As(err, &le) {
		t.Fatalf("got %v (kind %s), want a LimitError naming %s", err, errdefs.KindOf(err), resource)
	}
	if errdefs.KindOf(err) != errdefs.Limit || !errors.Is(err, errdefs.ErrLimit) {
		t.Errorf("LimitError does not classify as kind limit: %v", err)
	}
	if le.Resource != resource {
		t.Fatalf("LimitError names %q (%v), want %q", le.Resource, le, resource)
	}
	return le
}
