package skillenv

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/filelock"
	"github.com/skillbox-dev/skillbox/internal/skillenv/envtest"
)

var (
	wheel = envtest.Wheel
	index = envtest.Index
)

// hostBuilder runs a build job's script directly on the host, without a
// jail: it tests the script and the cache's bookkeeping, never isolation
// (the jailed builder's tests do that). It is not pid 1, so the script
// does not kill other processes.
type hostBuilder struct {
	mu     sync.Mutex
	builds int
}

func (h *hostBuilder) Build(ctx context.Context, j Job, progress func(string)) ([]byte, error) {
	h.mu.Lock()
	h.builds++
	h.mu.Unlock()
	if err := os.MkdirAll(j.Dir, 0o755); err != nil {
		return nil, err
	}
	defer os.RemoveAll(j.Dir) // the tmpfs a jail would drop
	cmd := exec.CommandContext(ctx, j.Argv[0], j.Argv[1:]...)
	cmd.Env = append(j.Env, "TMPDIR="+filepath.Dir(j.Dir))
	cmd.ExtraFiles = []*os.File{j.Out}
	cmd.Stdin = bytes.NewReader(j.Stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if progress != nil {
		for _, l := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
			progress(l)
		}
	}
	if err != nil && len(out) == 0 {
		return nil, fmt.Errorf("%v: %s", err, stderr.String())
	}
	return out, nil
}

func needPip(t *testing.T) string {
	t.Helper()
	pip, err := PipWheel()
	if err != nil {
		t.Skipf("%v (scripts/setup installs it)", err)
	}
	return pip
}

func newCache(t *testing.T, b Builder) (*Cache, Request, *atomic.Int64) {
	t.Helper()
	wheels := t.TempDir()
	wheel(t, wheels, "alpha", "1.0", "VERSION = '1.0'\nimport beta\n", "beta>=2")
	wheel(t, wheels, "beta", "2.0", "VERSION = '2.0'\n")
	wheel(t, wheels, "beta", "2.1", "VERSION = '2.1'\n")
	url, fetched := index(t, wheels)
	idx, err := IndexFromEnv(func(k string) string {
		return map[string]string{"PIP_INDEX_URL": url, "PIP_CONFIG_FILE": os.DevNull}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	req := Request{Python: "/usr/bin/python3", PythonVersion: "3", Requirements: []string{"Alpha"}, Index: idx}
	return &Cache{Dir: filepath.Join(t.TempDir(), "envs"), Builder: b, PipWheel: needPip(t)}, req, fetched
}

// An environment is built from a loopback index with pip, recorded with
// what pip resolved, and found again without a build.
func TestEnsureBuildsOnce(t *testing.T) {
	hb := &hostBuilder{}
	c, req, fetched := newCache(t, hb)
	var lines []string
	e, err := c.Ensure(context.Background(), req, func(l string) { lines = append(lines, l) })
	if err != nil {
		t.Fatal(err)
	}
	want := []Package{{Name: "alpha", Version: "1.0"}, {Name: "beta", Version: "2.1"}}
	if len(e.Resolved) != 2 || e.Resolved[0].Name != want[0].Name || e.Resolved[1].String() != want[1].String() ||
		!strings.HasPrefix(e.Resolved[0].Hash, "sha256=") {
		t.Errorf("resolved %+v, want %v with hashes", e.Resolved, want)
	}
	if fetched.Load() != 2 {
		t.Errorf("%d files fetched from the index, want 2", fetched.Load())
	}
	out, err := exec.Command(e.Python, "-c", "import alpha, beta, sys; print(alpha.VERSION, beta.VERSION, sys.prefix)").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "1.0 2.1 "+e.Dir {
		t.Errorf("the environment's python: %s %v", out, err)
	}
	if e.Dir != c.path(e.Key) || e.Requirements[0] != "alpha" {
		t.Errorf("env %+v", e)
	}
	// Nothing in it is writable by others, or owned by another user.
	filepath.Walk(e.Dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode()&os.ModeSymlink == 0 && info.Mode().Perm()&0o022 != 0 {
			t.Errorf("%s is writable by others: %v", p, info.Mode())
		}
		return nil
	})

	again, err := c.Ensure(context.Background(), req, nil)
	if err != nil || hb.builds != 1 || again.Key != e.Key {
		t.Errorf("second Ensure: %v, %d builds", err, hb.builds)
	}
	if got, err := c.Lookup(req); err != nil || got == nil || got.Key != e.Key {
		t.Errorf("Lookup = %v, %v", got, err)
	}
	if len(lines) == 0 {
		t.Error("no progress from the build")
	}
}

// Callers that need the same environment at once get one build.
func TestEnsureConcurrent(t *testing.T) {
	hb := &hostBuilder{}
	c, req, _ := newCache(t, hb)
	var wg sync.WaitGroup
	keys := make([]string, 4)
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e, err := c.Ensure(context.Background(), req, nil)
			if err != nil {
				t.Error(err)
				return
			}
			keys[i] = e.Key
		}()
	}
	wg.Wait()
	if hb.builds != 1 || keys[0] == "" || keys[0] != keys[3] {
		t.Errorf("%d builds, keys %v", hb.builds, keys)
	}
}

// A requirement the index cannot satisfy is unavailable with pip's reason,
// and leaves nothing behind.
func TestEnsureFails(t *testing.T) {
	c, req, _ := newCache(t, &hostBuilder{})
	req.Requirements = []string{"alpha", "gamma>=9"}
	_, err := c.Ensure(context.Background(), req, nil)
	if errdefs.KindOf(err) != errdefs.Unavailable || !strings.Contains(err.Error(), "alpha gamma>=9") || !strings.Contains(err.Error(), "pip install exited") {
		t.Errorf("err = %v", err)
	}
	ents, _ := os.ReadDir(c.Dir)
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".lock") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
	// An sdist is refused without the operator's opt-in: wheels only.
	req.Requirements = []string{"alpha"}
	c.Builder = builderFunc(func(ctx context.Context, j Job, _ func(string)) ([]byte, error) {
		if !strings.Contains(string(j.Stdin), `"--only-binary",":all:"`) {
			return nil, errors.New("the build allows sdists")
		}
		return nil, errors.New("stop")
	})
	if _, err := c.Ensure(context.Background(), req, nil); err == nil || strings.Contains(err.Error(), "allows sdists") {
		t.Errorf("wheels only: %v", err)
	}
}

// A build that outlasts Bounds.Timeout is stopped (its context ends) and
// is unavailable naming the requirements and the limit; nothing is left
// behind, and the caller's own context is not the one that ended.
func TestEnsureTimeout(t *testing.T) {
	c, req, _ := newCache(t, nil)
	c.Bounds.Timeout = 300 * time.Millisecond
	var stopped atomic.Bool
	c.Builder = builderFunc(func(ctx context.Context, j Job, _ func(string)) ([]byte, error) {
		select {
		case <-ctx.Done():
			stopped.Store(true)
			return nil, ctx.Err()
		case <-time.After(2 * time.Minute): // only against a hang
			return nil, errors.New("the build's context never ended")
		}
	})
	_, err := c.Ensure(context.Background(), req, nil)
	if errdefs.KindOf(err) != errdefs.Unavailable || !strings.Contains(err.Error(), "building the environment for alpha took longer than 300ms") {
		t.Errorf("err = %v; want unavailable naming the requirement and the time limit", err)
	}
	if !stopped.Load() {
		t.Error("the builder's context did not end at the time limit")
	}
	ents, _ := os.ReadDir(c.Dir)
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".lock") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

// A build of many long requirements that fails (here: the builder
// refuses it; any reason, or the time limit, reads the same) is an error
// that names the first requirements and counts the rest, not one that
// repeats them all (200 of 860 bytes made a message of 170 KB); the
// builder gets them all.
func TestBuildErrorClipsRequirements(t *testing.T) {
	c, req, _ := newCache(t, nil)
	req.Requirements = nil
	for i := range 200 {
		req.Requirements = append(req.Requirements, fmt.Sprintf("alpha; platform_release == '%s%03d'", strings.Repeat("x", 800), i))
	}
	for _, timeout := range []bool{false, true} {
		c.Bounds.Timeout = time.Minute
		if timeout {
			c.Bounds.Timeout = time.Millisecond
		}
		var spec []byte
		c.Builder = builderFunc(func(ctx context.Context, j Job, _ func(string)) ([]byte, error) {
			spec = j.Stdin
			if timeout {
				<-ctx.Done()
				return nil, ctx.Err()
			}
			return nil, errors.New("refused")
		})
		_, err := c.Ensure(context.Background(), req, nil)
		if err == nil || len(err.Error()) > 2048 || !strings.Contains(err.Error(), "'xxxx") || !strings.Contains(err.Error(), " more") {
			t.Errorf("timeout %v: err (%d bytes) = %.3000v; want at most 2 KiB naming the first requirements and counting the rest", timeout, len(err.Error()), err)
		}
		if n := strings.Count(string(spec), "platform_release"); n != 200 {
			t.Errorf("timeout %v: the builder got %d requirements, want 200", timeout, n)
		}
	}
}

func TestListed(t *testing.T) {
	long := strings.Repeat("é", 100) // 200 bytes
	for _, c := range []struct {
		reqs []string
		want string
	}{
		{nil, ""},
		{[]string{"a", "b>=2"}, "a, b>=2"},
		{[]string{long}, strings.Repeat("é", 58) + "..."},
		{slices.Repeat([]string{"abcdefghij"}, 100), strings.Repeat("abcdefghij, ", 50) + "and 50 more"},
	} {
		if got := Listed(c.reqs, ", "); got != c.want {
			t.Errorf("Listed(%q) = %q, want %q", c.reqs, got, c.want)
		}
	}
}

type builderFunc func(context.Context, Job, func(string)) ([]byte, error)

func (f builderFunc) Build(ctx context.Context, j Job, p func(string)) ([]byte, error) {
	return f(ctx, j, p)
}

// Prune removes what keep refuses and spares the rest.
func TestPrune(t *testing.T) {
	c, req, _ := newCache(t, &hostBuilder{})
	a, err := c.Ensure(context.Background(), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	req2 := req
	req2.Requirements = []string{"beta==2.0"}
	b, err := c.Ensure(context.Background(), req2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if l, _ := c.List(); len(l) != 2 {
		t.Fatalf("List = %d environments", len(l))
	}
	// An environment in use (a call holds Use) is spared, not waited for.
	release, err := c.Use(b.Key)
	if err != nil {
		t.Fatal(err)
	}
	removed, inUse, err := c.Prune(func(e *Env) bool { return false })
	if err != nil || len(removed) != 1 || removed[0].Key != a.Key || len(inUse) != 1 || inUse[0].Key != b.Key {
		t.Fatalf("Prune removed %v, spared %v, %v", removed, inUse, err)
	}
	release()
	if _, err := c.Use("sha256:../../x"); errdefs.KindOf(err) != errdefs.Invalid {
		t.Errorf("Use of a bad key: %v", err)
	}
	if _, err := os.Stat(a.Dir); !os.IsNotExist(err) {
		t.Errorf("%s still there", a.Dir)
	}
	if l, _ := c.List(); len(l) != 1 || l[0].Key != b.Key {
		t.Errorf("after prune: %v", l)
	}
	if removed, inUse, err := c.Prune(func(e *Env) bool { return false }); err != nil || len(removed) != 1 || len(inUse) != 0 {
		t.Errorf("once released: removed %v, spared %v, %v", removed, inUse, err)
	}
}

// A build killed before it removed its stage folder left it in the cache:
// the key's next build sweeps it, and so does Prune, unless a build of
// that key still holds its lock.
func TestKilledBuildStagesAreSwept(t *testing.T) {
	c, req, _ := newCache(t, &hostBuilder{})
	key, err := req.Key()
	if err != nil {
		t.Fatal(err)
	}
	other := strings.Repeat("a", 32)
	stage := func(dir string) string {
		p := filepath.Join(c.Dir, stagePrefix+dir+"-1234")
		if err := os.MkdirAll(filepath.Join(p, "lib", "site-packages"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	left, busy := stage(dirName(key)), stage(other)
	legacy := filepath.Join(c.Dir, stagePrefix+"98765")
	os.Mkdir(legacy, 0o755)
	if _, err := c.Ensure(context.Background(), req, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Errorf("the key's build left its killed stage %s", left)
	}
	if _, err := os.Stat(busy); err != nil {
		t.Errorf("another key's stage went: %v", err)
	}
	unlock, err := filelock.Lock(filepath.Join(c.Dir, other)+".lock", "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Prune(func(*Env) bool { return true }); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(busy); err != nil {
		t.Errorf("Prune removed the stage of a build that runs: %v", err)
	}
	unlock()
	if _, _, err := c.Prune(func(*Env) bool { return true }); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(busy); !os.IsNotExist(err) {
		t.Errorf("Prune kept the stage %s of a build that ended", busy)
	}
	if _, err := os.Stat(legacy); err != nil {
		t.Errorf("a folder not named by a key went: %v", err)
	}
	if l, _ := c.List(); len(l) != 1 {
		t.Errorf("List = %v", l)
	}
}

// The build script copies only folders, files and links that stay inside
// the environment, and never follows a link; a link that leads out of it
// fails the build, naming it.
func TestScriptCopiesSafely(t *testing.T) {
	pip := needPip(t)
	wheels := t.TempDir()
	wheel(t, wheels, "alpha", "1.0", "x = 1\n")
	// run builds alpha with plant's files in the environment, what a
	// hostile package could leave there; it returns the copy and the
	// script's result.
	run := func(plant func(dir string)) (string, []Package, error) {
		dir := filepath.Join(t.TempDir(), "env")
		outDir := t.TempDir()
		out, _ := os.Open(outDir)
		defer out.Close()
		req := Request{Python: "/usr/bin/python3", Requirements: []string{"alpha"}}
		idx, _ := IndexFromEnv(func(k string) string { return map[string]string{"PIP_CONFIG_FILE": os.DevNull}[k] })
		req.Index = idx
		j, err := job(req, []string{"alpha", "--no-index", "--find-links", wheels}, dir, out, pip, sources{}, Bounds{}.WithDefaults())
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Join(dir, "planted"), 0o755)
		plant(dir)
		res, err := (&hostBuilder{}).Build(context.Background(), j, nil)
		if err != nil {
			t.Fatal(err)
		}
		pkgs, err := parseResult(res)
		return outDir, pkgs, err
	}
	outDir, _, err := run(func(dir string) {
		os.Symlink("suid", filepath.Join(dir, "planted", "alias"))
		exec.Command("mkfifo", filepath.Join(dir, "planted", "fifo")).Run()
		os.WriteFile(filepath.Join(dir, "planted", "suid"), []byte("x"), 0o4755)
	})
	if err != nil {
		t.Fatal(err)
	}
	if l, err := os.Readlink(filepath.Join(outDir, "planted", "alias")); err != nil || l != "suid" {
		t.Errorf("the link was not copied as a link: %q %v", l, err)
	}
	if _, err := os.Lstat(filepath.Join(outDir, "planted", "fifo")); !os.IsNotExist(err) {
		t.Errorf("a fifo was copied: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(outDir, "planted", "suid")); err != nil || fi.Mode()&os.ModeSetuid != 0 {
		t.Errorf("setuid kept: %v %v", fi.Mode(), err)
	}
	if _, err := os.Stat(filepath.Join(outDir, "bin", "python")); err != nil {
		t.Errorf("no bin/python: %v", err)
	}
	outDir, _, err = run(func(dir string) { os.Symlink("/etc/passwd", filepath.Join(dir, "planted", "passwd")) })
	if err == nil || !strings.Contains(err.Error(), "symbolic link planted/passwd -> /etc/passwd, which leads out of it") {
		t.Errorf("a link to a host file: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(outDir, "planted", "passwd")); err == nil {
		t.Errorf("a link to a host file was copied")
	}
}

// An environment keeps its files' modification times: pip's .pyc files
// name their source's, and a read-only environment whose .pyc files are
// stale compiles every module again at every import (each call's child).
func TestBuildKeepsBytecodeValid(t *testing.T) {
	c, req, _ := newCache(t, &hostBuilder{})
	e, err := c.Ensure(context.Background(), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	pycs, _ := filepath.Glob(filepath.Join(e.Dir, "lib", "python3*", "site-packages", "__pycache__", "alpha.*.pyc"))
	if len(pycs) != 1 {
		t.Fatalf("pip left %v, want one alpha .pyc", pycs)
	}
	src := filepath.Join(filepath.Dir(filepath.Dir(pycs[0])), "alpha.py")
	st, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 16)
	f, err := os.Open(pycs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.ReadFull(f, head); err != nil {
		t.Fatal(err)
	}
	// PEP 552: flags 0 is a timestamp .pyc; then the source's mtime and size.
	flags, mtime, size := binary.LittleEndian.Uint32(head[4:]), binary.LittleEndian.Uint32(head[8:]), binary.LittleEndian.Uint32(head[12:])
	if flags == 0 && (mtime != uint32(st.ModTime().Unix()) || size != uint32(st.Size())) {
		t.Errorf("%s names a source of mtime %d and size %d; %s has %d and %d: every import would compile it again",
			pycs[0], mtime, size, src, st.ModTime().Unix(), st.Size())
	}
}

// A build's progress gets at most maxProgress bytes of its output, then
// how much more there was; a full tmpfs is still seen past that. A build
// step writing without end (an sdist's setup.py) sent all of it to the
// progress: under serve, the server's standard error.
func TestEnsureProgressIsBounded(t *testing.T) {
	c, req, _ := newCache(t, nil)
	line := strings.Repeat("y", 99)
	c.Builder = builderFunc(func(ctx context.Context, j Job, progress func(string)) ([]byte, error) {
		for range 80000 { // 8 MB
			progress(line)
		}
		progress("OSError: [Errno 28] " + noSpace)
		return nil, errors.New("stop")
	})
	var shown int
	var last string
	_, err := c.Ensure(context.Background(), req, func(l string) { shown += len(l) + 1; last = l })
	if err == nil || !strings.Contains(err.Error(), "ran out of space") {
		t.Errorf("err = %v; want the build's full tmpfs named", err)
	}
	if shown > 2<<20 {
		t.Errorf("the progress got %d bytes of the build's 8 MB of output", shown)
	}
	if !strings.Contains(last, "more bytes of the build's output not shown") {
		t.Errorf("last progress line %q does not say output was cut", last)
	}
}
