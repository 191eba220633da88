//go:build linux

package linux

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/internal/bench"
	"github.com/skillbox-dev/skillbox/internal/image"
	"github.com/skillbox-dev/skillbox/internal/image/imagetest"
	"github.com/skillbox-dev/skillbox/internal/pyinterp"
	"github.com/skillbox-dev/skillbox/internal/worker"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// BenchmarkContainerTier is issue 16's comparison (docs/PERFORMANCE.md,
// "Container tier"): the echo skill called in one run, modes alternated
// round by round (internal/bench.Run), as
//
//   - the linux tier on the host's interpreter (the one the image is made
//     of): single-use calls back to back, and pre-forked (calls 150 ms
//     apart, the next child ready), with the interpreter untrusted (the
//     default) and trusted (its key in trusted_environments, as a trusted
//     image's is), a fresh jail per call started at the call (cold) and
//     started ahead of it (exec prestart: back to back, and 150 ms apart,
//     a spare ready), beside that python run bare;
//   - the container tier on imagetest's Python image: trusted (its digest
//     in trusted_environments: zygote, single-use back to back and
//     pre-forked) and untrusted (a fresh jail and interpreter per call:
//     started ahead of it by default, back to back and 150 ms apart, and
//     cold);
//   - the image's own python run bare per call, the baseline of the
//     untrusted target: the harness started by the image's /usr/bin/python3
//     in a plain chroot(2) into a copy of the image's root file system (hard
//     links) holding the skill at /bench-skill, as root, no namespaces;
//   - `runc run` starting a container per call on an OCI bundle of that
//     same root (read-only; internal/bench.OCIBundle, the peers table's),
//     the harness's protocol descriptors passed with --preserve-fds.
//
// Every process-per-call mode runs the skillbox harness in single mode, as
// a cold jail does. It runs once whatever b.N (-benchtime 1x); rounds and
// calls per round come from SKILLBOX_BENCH_ROUNDS (default 20) and
// SKILLBOX_BENCH_CALLS (5); SKILLBOX_BENCH_MODES=A,B keeps the baseline and
// the modes whose names contain A or B (for a profile of a few). It
// reports; it never fails on slowness.
func BenchmarkContainerTier(b *testing.B) {
	requireRoot(b)
	// The linux tier runs the interpreter the image was made of.
	in, err := pyinterp.Resolve(context.Background(), imagetest.Python)
	if err != nil {
		b.Skip(err)
	}
	dir := bundle(b, echoBody)
	imagetest.PythonImage(b, filepath.Join(dir, "image"))
	digest, err := imagetest.Digest(filepath.Join(dir, "image"))
	if err != nil {
		b.Fatal(err)
	}
	cacheDir := filepath.Join(b.TempDir(), "images")
	ref, err := image.ParseRef("oci:image", dir)
	if err != nil {
		b.Fatal(err)
	}
	img, err := (&image.Cache{Dir: cacheDir}).Pull(context.Background(), ref)
	if err != nil {
		b.Fatal(err)
	}
	// A private copy of the root for chroot and runc (runc makes its mount
	// points in it), with the skill inside.
	root := filepath.Join(b.TempDir(), "rootfs")

	if out, err := exec.Command("cp", "-al", img.Rootfs, root).CombinedOutput(); err != nil {
		b.Fatalf("cp -al: %v: %s", err, out)
	}
	if out, err := exec.Command("cp", "-a", dir+"/skill.py", dir+"/manifest.yaml", mkdir(b, filepath.Join(root, "bench-skill"))).CombinedOutput(); err != nil {
		b.Fatalf("cp: %v: %s", err, out)
	}
	container := func(trusted bool) sandbox.Spec {
		s := sandbox.Spec{BundleDir: dir, Container: &sandbox.Container{Image: "oci:image"}}
		if trusted {
			s.TrustedEnvironments = []string{digest}
		}
		return s
	}
	box := func(opts Options, spec sandbox.Spec) func(context.Context) (bench.Caller, error) {
		return func(context.Context) (bench.Caller, error) {
			opts.ImageCache, opts.Python = cacheDir, in.Command
			return sandboxCaller{openBox(b, opts, spec)}, nil
		}
	}
	// A trusted image's zygote processes site and pre-imports as for a
	// trusted interpreter: the like-for-like linux tier lists the host
	// interpreter's key in trusted_environments too.
	hostTrusted := sandbox.Spec{BundleDir: dir, TrustedEnvironments: []string{environmentKey(in)}}
	const gap = 150 * time.Millisecond
	imageEnv := worker.Environ("/bench-skill", nil)
	modes := []bench.Mode{
		{Name: "image's python bare, chroot", Kind: bench.Call, Baseline: true, Open: processOpener(func() *exec.Cmd {
			cmd := exec.Command("/usr/bin/python3", worker.Argv("/usr/bin/python3")[1:]...)
			cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
			cmd.Dir, cmd.Env = "/", imageEnv
			return cmd
		}, "/bench-skill")},
		{Name: "container, untrusted image: cold", Kind: bench.Call, Open: box(Options{Exec: ExecCold}, container(false))},
		{Name: "container, untrusted image: single-use", Kind: bench.Call, Open: box(Options{}, container(false))},
		{Name: "container, untrusted image: pre-started", Kind: bench.Call, Gap: gap, Open: box(Options{}, container(false))},
		{Name: "container, trusted image: single-use", Kind: bench.Call, Open: box(Options{Exec: ExecZygote}, container(true))},
		{Name: "container, trusted image: pre-forked", Kind: bench.Call, Gap: gap, Open: box(Options{Exec: ExecZygote}, container(true))},
		{Name: "linux tier: single-use", Kind: bench.Call, Open: box(Options{Exec: ExecZygote}, sandbox.Spec{BundleDir: dir})},
		{Name: "linux tier: pre-forked", Kind: bench.Call, Gap: gap, Open: box(Options{Exec: ExecZygote}, sandbox.Spec{BundleDir: dir})},
		{Name: "linux tier, interpreter trusted: single-use", Kind: bench.Call, Open: box(Options{Exec: ExecZygote}, hostTrusted)},
		{Name: "linux tier, interpreter trusted: pre-forked", Kind: bench.Call, Gap: gap, Open: box(Options{Exec: ExecZygote}, hostTrusted)},
		{Name: "linux tier: cold", Kind: bench.Call, Open: box(Options{Exec: ExecCold}, sandbox.Spec{BundleDir: dir})},
		{Name: "linux tier, exec prestart: single-use", Kind: bench.Call, Open: box(Options{Exec: ExecPrestart}, sandbox.Spec{BundleDir: dir})},
		{Name: "linux tier, exec prestart: pre-started", Kind: bench.Call, Gap: gap, Open: box(Options{Exec: ExecPrestart}, sandbox.Spec{BundleDir: dir})},
		{Name: "host python bare", Kind: bench.Call, Open: processOpener(func() *exec.Cmd {
			argv := worker.Argv(in.Command)
			cmd := exec.Command(argv[0], argv[1:]...)
			cmd.Dir, cmd.Env = dir, worker.Environ(dir, nil)
			return cmd
		}, dir)},
	}
	runcMode := bench.Mode{Name: "runc run per call, image root", Kind: bench.Call}
	if runc, err := exec.LookPath("runc"); err != nil {
		runcMode.Skip = "runc not installed (apt-get install runc)"
	} else {
		ociDir := filepath.Join(b.TempDir(), "bundle")
		err := bench.WriteOCIBundle(ociDir, bench.OCIBundle{Rootfs: root, Args: worker.Argv("/usr/bin/python3"), Env: imageEnv})
		if err != nil {
			b.Fatal(err)
		}
		state := filepath.Join(b.TempDir(), "runc-state")
		argv := bench.RuncRun(runc, state, ociDir, "skillbox-bench-"+strconv.Itoa(os.Getpid()), 2)
		runcMode.Open = processOpener(func() *exec.Cmd { return exec.Command(argv[0], argv[1:]...) }, "/bench-skill")
	}
	modes = append(modes, runcMode)
	if only := os.Getenv("SKILLBOX_BENCH_MODES"); only != "" {
		modes = slices.DeleteFunc(modes, func(m bench.Mode) bool {
			return !m.Baseline && !slices.ContainsFunc(strings.Split(only, ","), func(s string) bool { return strings.Contains(m.Name, s) })
		})
	}
	rounds, calls := envInt(b, "SKILLBOX_BENCH_ROUNDS", 20), envInt(b, "SKILLBOX_BENCH_CALLS", 5)
	for i := 0; i < b.N; i++ {
		rep, err := bench.Run(context.Background(), bench.Config{Rounds: rounds, Calls: calls, Progress: os.Stderr}, modes)
		if err != nil {
			b.Fatal(err)
		}
		fmt.Printf("load average %s before, %s after; %d rounds × %d calls per mode\n\n", rep.LoadBefore, rep.LoadAfter, rounds, calls)
		fmt.Printf("| mode | n | p50 ms | p90 ms | p50 / image's python bare | CPU ms per call (this process and its descendants) |\n|---|---:|---:|---:|---:|---:|\n")
		p50 := map[string]float64{}
		for _, r := range rep.Rows {
			if r.Skipped != "" {
				fmt.Printf("| %s | skipped: %s | | | | |\n", r.Name, r.Skipped)
				continue
			}
			p50[r.Name] = r.P50MS
			fmt.Printf("| %s | %d | %.1f | %.1f | %.2f× | %.1f |\n", r.Name, r.N, r.P50MS, r.P90MS, r.VsCall, r.CPUMS)
		}
		fmt.Println()
		ratio := func(a, c string) string {
			if p50[a] == 0 || p50[c] == 0 {
				return "—"
			}
			return fmt.Sprintf("%.2f×", p50[a]/p50[c])
		}
		fmt.Printf("trusted single-use / linux single-use: %s (target ≤ 1.5×)\n", ratio("container, trusted image: single-use", "linux tier: single-use"))
		fmt.Printf("trusted single-use / linux single-use, interpreter trusted: %s\n", ratio("container, trusted image: single-use", "linux tier, interpreter trusted: single-use"))
		fmt.Printf("trusted pre-forked / linux pre-forked: %s; interpreter trusted: %s\n", ratio("container, trusted image: pre-forked", "linux tier: pre-forked"),
			ratio("container, trusted image: pre-forked", "linux tier, interpreter trusted: pre-forked"))
		fmt.Printf("untrusted cold / image's python bare: %s (target ≤ 1.3×)\n", ratio("container, untrusted image: cold", "image's python bare, chroot"))
		fmt.Printf("untrusted pre-started / untrusted cold: %s\n", ratio("container, untrusted image: pre-started", "container, untrusted image: cold"))
		fmt.Printf("linux cold / host python bare: %s\n", ratio("linux tier: cold", "host python bare"))
		fmt.Printf("runc per call / untrusted cold: %s; / trusted single-use: %s\n", ratio("runc run per call, image root", "container, untrusted image: cold"),
			ratio("runc run per call, image root", "container, trusted image: single-use"))
	}
}

// sandboxCaller makes the echo call to a Sandbox.
type sandboxCaller struct{ sb sandbox.Sandbox }

func (s sandboxCaller) Call(ctx context.Context) (json.RawMessage, error) {
	res, err := s.sb.Call(ctx, echoReq)
	if err != nil {
		return nil, err
	}
	return res.Value, nil
}

func (s sandboxCaller) Close() error { return s.sb.Close() }

// Pid is this process: the CPU column is this process's and its
// descendants' (jails, zygotes, their children) over a round's calls.
func (sandboxCaller) Pid() int { return os.Getpid() }

// processOpener is a Call mode whose every call starts the harness with
// cmd() (a new command each time), sends init for the skill at skillDir
// (as the process sees it) in single mode, makes the echo call and waits
// for the process to end: a whole process per call.
func processOpener(cmd func() *exec.Cmd, skillDir string) func(context.Context) (bench.Caller, error) {
	return func(context.Context) (bench.Caller, error) { return processCaller{cmd, skillDir}, nil }
}

type processCaller struct {
	cmd      func() *exec.Cmd
	skillDir string
}

func (p processCaller) Call(ctx context.Context) (json.RawMessage, error) {
	w, err := worker.Start(ctx, p.cmd(), 64<<10)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	if _, err := w.Init(ctx, worker.Init{Bundle: p.skillDir, Mode: worker.ModeSingle}); err != nil {
		return nil, fmt.Errorf("%w; stderr: %s", err, w.Stderr.Bytes())
	}
	out, err := w.Call(ctx, 1, echoReq.Params, nil)
	if err != nil {
		return nil, err
	}
	w.Wait()
	return out, nil
}

func (processCaller) Close() error { return nil }

// Pid is this process, whose reaped children (the harness, runc) count.
func (processCaller) Pid() int { return os.Getpid() }

func mkdir(t testing.TB, dir string) string {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func envInt(t testing.TB, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive number", name, s)
	}
	return n
}
