//go:build unix

package pyodide

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/backend"
	"github.com/skillbox-dev/skillbox/internal/worker"
	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/skill"
)

// Paths inside Pyodide's in-memory file system.
const (
	bundleDir  = "/skill"
	scratchDir = "/scratch"
)

// maxBundle caps the bundle copied into every worker's memory.
const maxBundle = 64 << 20

// setupFrame is what the host sends a worker on fd 5 before init: the
// bundle's files, the skill's environment's packages when it has one, and
// the environment Python sees.
type setupFrame struct {
	Bundle  string            `json:"bundle"`
	Scratch string            `json:"scratch"`
	Env     map[string]string `json:"env"`
	Files   [][2]string       `json:"files"` // slash path relative to the bundle, base64 content
	// Site is where the skill's environment's packages go (envDir), ""
	// without one; SiteFiles are its files, as Files.
	Site      string      `json:"site,omitempty"`
	SiteFiles [][2]string `json:"site_files,omitempty"`
}

// readBundle reads the regular files of dir (symlinks and __pycache__ are
// skipped) and those of env's site-packages (readEnvironment) into one
// setup frame.
func readBundle(dir string, environ []string, env *sandbox.Environment) ([]byte, error) {
	st, err := os.Stat(dir)
	if err != nil || !st.IsDir() {
		return nil, errdefs.New(errdefs.Invalid, "bundle %q is not a directory", dir)
	}
	s := setupFrame{Bundle: bundleDir, Scratch: scratchDir, Env: map[string]string{}}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		s.Env[k] = v
	}
	if s.Files, err = readTree(dir, maxBundle, "bundle "+dir); err != nil {
		return nil, err
	}
	if err := readEnvironment(&s, env); err != nil {
		return nil, err
	}
	return json.Marshal(s)
}

// readTree reads the regular files under dir (symlinks and __pycache__
// skipped), at most max bytes in all, as (slash path relative to dir,
// base64 content) pairs; what names dir in errors.
func readTree(dir string, max int, what string) ([][2]string, error) {
	files := [][2]string{}
	total := 0
	err := filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if de.IsDir() {
			if de.Name() == "__pycache__" {
				return filepath.SkipDir
			}
			return nil
		}
		if !de.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if total += len(b); total > max {
			return errdefs.New(errdefs.Invalid, "%s is larger than the pyodide backend's %s", what, skill.FormatSize(int64(max)))
		}
		rel, _ := filepath.Rel(dir, p)
		files = append(files, [2]string{filepath.ToSlash(rel), base64.StdEncoding.EncodeToString(b)})
		return nil
	})
	if err != nil {
		if errdefs.KindOf(err) == errdefs.Invalid {
			return nil, err
		}
		return nil, errdefs.Wrap(errdefs.Invalid, err, "read "+what)
	}
	return files, nil
}

// box runs the calls of one Spec. Single-use: calls go to host processes
// (worker.mjs host mode: one long-running Deno process holding this box's
// one grant set), each serving one call at a time in a fresh Web Worker
// that it terminates when the call ends; a host is armed (a worker has
// imported the skill) before it takes a call, re-armed in the background
// after each call, and retired after Options.Recycle calls or any abnormal
// event (timeout, harness error, broken protocol, OOM). Session: one worker
// process serves every call, one at a time.
type box struct {
	d        *Driver
	f        files
	spec     sandbox.Spec
	lim      sandbox.Limits
	reqNames []string
	setup    []byte
	cg       cgroups     // controllers for each worker's group (Linux)
	jail     *workerJail // nil: workers run unjailed
	warnings []string    // added to every result

	life   context.Context // workers live at most as long as the box
	cancel context.CancelFunc
	idle   chan *proc // armed hosts waiting for a call
	nextID atomic.Uint64
	closed atomic.Bool
	wg     sync.WaitGroup

	mu      sync.Mutex // live, arming, changed; session
	live    int        // hosts started and not yet retired
	arming  int        // hosts loading the skill for their next call
	changed chan struct{}
	session *proc
}

func newBox(d *Driver, f files, spec sandbox.Spec, reqNames []string, setup []byte) *box {
	life, cancel := context.WithCancel(context.Background())
	return &box{
		d: d, f: f, spec: spec, lim: spec.Limits.WithDefaults(), reqNames: reqNames, setup: setup,
		life: life, cancel: cancel,
		idle:    make(chan *proc, d.opts.MaxWorkers),
		changed: make(chan struct{}),
	}
}

func (b *box) sessionMode() bool { return b.spec.Mode == sandbox.ModeSession }

// warm starts the first worker, so Open reports a skill that cannot load.
func (b *box) warm(ctx context.Context) error {
	mode := worker.ModeSingle
	if b.sessionMode() {
		mode = worker.ModeSession
	}
	p, err := b.start(ctx, mode)
	if err != nil {
		return err
	}
	if b.sessionMode() {
		b.session = p
		return nil
	}
	b.mu.Lock()
	b.live++
	b.mu.Unlock()
	b.idle <- p
	return nil
}

// proc is a started worker. A call returns as soon as the reply is in
// and the output written before it is settled (worker.Process.SettleOutput),
// without waiting the ~10 ms a Deno process takes to exit.
type proc struct {
	*worker.Process
	cg      *workerGroup // nil without cgroups
	release func()       // the jail's host side (egress proxy)
	host    bool         // a host process (single-use calls in Web Workers)
	calls   int          // calls a host has served
	cwd     string       // a host's working directory at its start ("": unknown)
	// pool are the ids of a host's Web Worker threads before its next
	// call's skill was imported: all idle then, one of them is the worker
	// that imports it (nil: not known).
	pool map[int]bool
	// untracked, when set, is why the threads a call's worker starts
	// cannot be told apart from the host's own (workerGroup.track): the
	// host is retired after its call.
	untracked error
	// credited is how much of stdout and stderr the last call's result
	// took: anything after it was written past the call's reply.
	credited [2]int64
}

// Close kills the worker, waits for it and releases its pipes and cgroup.
func (p *proc) Close() error {
	err := p.Process.Close()
	p.cg.remove()
	p.release()
	return err
}

// limitErr names the cgroup limit a worker that failed ran into, or
// returns err. An OOM kill or a refused thread looks like a dead worker.
func (b *box) limitErr(p *proc, err error) error {
	if p.cg.oomKilled() {
		base := b.baseline(p.host)
		return &errdefs.LimitError{Resource: "memory", Limit: skill.FormatSize(b.lim.Memory),
			Detail: fmt.Sprintf("the kernel OOM killer stopped the worker (cgroup limit %s: %s worker baseline + the budget)",
				skill.FormatSize(base+b.lim.Memory), skill.FormatSize(base))}
	}
	if p.cg.pidsRefused() {
		return &errdefs.LimitError{Resource: "pids", Limit: fmt.Sprint(b.lim.Pids), Detail: "thread creation was refused"}
	}
	return err
}

// start launches a worker and loads the skill into it. ctx bounds the
// start; the worker itself lives until the box closes (or its call ends).
func (b *box) start(ctx context.Context, mode string) (*proc, error) {
	begun := time.Now()
	callerDeadline, callerHas := ctx.Deadline()
	// The start allowance covers Deno and the snapshot's restore; the
	// call's timeout bounds the skill's import.
	ctx, cancel := context.WithTimeout(ctx, b.lim.Timeout+backend.StartAllowance)
	defer cancel()
	host := mode == worker.ModeSingle
	glim := b.lim
	glim.Memory += b.baseline(host) - memBaseline
	if host {
		glim.Pids += b.d.opts.Idle + 1 // a thread per Web Worker
	}
	cg, err := b.cg.newGroup(glim)
	if err != nil {
		return nil, errdefs.Wrap(errdefs.Internal, err, "start deno")
	}
	allow := []string{"--allow-read=/dev/fd/3,/dev/fd/5", "--allow-write=/dev/fd/4"}
	var hosts []string
	if len(b.spec.Network) > 0 {
		// Only with the jail (Open): the proxy is the only route out.
		for _, h := range b.spec.Network {
			hosts = append(hosts, h.String())
		}
		allow = append(allow, "--allow-net="+strings.Join(hosts, ","))
	}
	if host {
		// Web Workers with permissions of their own (narrower than the
		// process's: no protocol descriptors).
		allow = append(allow, "--unstable-worker-options")
	}
	if cert := b.jail.certFile(); cert != "" {
		// With a network grant the jail holds one CA bundle, read-only:
		// the host's, the operator's ca_file and, with secrets bound, the
		// proxy's interception CA (it substitutes the placeholder on the
		// wire). Deno adds it to its own root store (Mozilla's); fetch,
		// and with it the skill's HTTP from Pyodide, verifies against both.
		allow = append(allow, "--cert="+cert)
	}
	grouped := cg != nil && b.cg.has("memory")
	flim := b.lim
	if grouped {
		// Each isolate's heaps are capped at the group's limit, so that
		// the group binds (an OOM kill, reported as the memory limit).
		flim = glim
	}
	args := denoArgs(b.f.rt, b.f.dir, allow, v8Flags(flim, grouped))
	if host {
		// The host's own bound on a call (the Go side's comes first;
		// this one stops a worker that outlives a Go side gone slow).
		args = append(args, "host", fmt.Sprint(b.d.opts.Idle), fmt.Sprint((b.lim.Timeout + hostGrace).Milliseconds()), strings.Join(hosts, ","))
	} else {
		args = append(args, "run")
	}
	cmd := exec.Command(b.f.rt.Deno, args...)
	cmd.Env = denoEnv(b.f.rt)
	cmd.Dir = b.f.dir
	setupR, setupW, err := os.Pipe()
	if err != nil {
		cg.remove()
		return nil, errdefs.Wrap(errdefs.Internal, err, "worker pipes")
	}
	cmd.ExtraFiles = []*os.File{setupR} // fd 5, after the protocol's 3 and 4
	launch, release := b.jail.wrap(ctx, cmd, cg)
	wp, err := worker.StartWith(b.life, cmd, b.lim.Stdio, worker.StartOptions{Launch: launch})
	setupR.Close()
	if err != nil {
		setupW.Close()
		cg.remove()
		release()
		return nil, errdefs.Wrap(errdefs.Internal, err, "start deno")
	}
	p := &proc{Process: wp, cg: cg, release: release, host: host}
	if host {
		p.cwd = procCwd(wp.Cmd.Process.Pid) // before any skill code ran in it
	}
	go func() {
		// A worker that dies early makes this fail with EPIPE; Init reports it.
		_, _ = setupW.Write(frame(b.setup))
		setupW.Close()
	}()
	p.Conn.SetMaxResult(int(b.lim.Output))
	if host {
		b.track(ctx, p)
	}
	if err := b.load(ctx, p, mode, ""); err != nil {
		err = b.limitErr(p, err) // before Close removes the group
		// What the skill printed while it was imported: written before
		// the worker's reply, so in the pipes now.
		p.SettleOutput(ctx)
		p.Close()
		if errors.Is(ctx.Err(), context.DeadlineExceeded) && errdefs.KindOf(err) == errdefs.Timeout {
			err = startTimeoutError(b.lim.Timeout, begun, callerDeadline, callerHas)
		}
		return nil, errdefs.WithOutput(err, p.Stdout.Bytes(), p.Stderr.Bytes())
	}
	return p, nil
}

// load sends p the init frame: the worker (in a host, its next call's Web
// Worker) imports the skill, and unmet requirements explain a failure.
// mark, when set, is the output mark a host writes first (rearm).
func (b *box) load(ctx context.Context, p *proc, mode, mark string) error {
	ready, err := p.Init(ctx, worker.Init{
		Type:         worker.TypeInit,
		Bundle:       bundleDir,
		Manifest:     b.spec.Manifest,
		Mode:         mode,
		Requirements: b.reqNames,
		Mark:         mark,
	})
	if pk, ok := worker.PackagesOf(ready, err); ok {
		// An unmet requirement explains an import error better than the
		// import error does.
		version := ""
		if ready != nil {
			version = ready.Python
		}
		if rerr := backend.CheckRequirements(b.spec.Requirements, pk, python(version), ""); rerr != nil {
			err = rerr
		}
	}
	return err
}

// startTimeoutError says which deadline a worker's start ran out of, begun
// at begun under a call timeout of timeout: the caller's (callerDeadline,
// when callerHas), if it came before the backend's own allowance of
// timeout+backend.StartAllowance, or that allowance.
func startTimeoutError(timeout time.Duration, begun, callerDeadline time.Time, callerHas bool) error {
	own := timeout + backend.StartAllowance
	if callerHas && callerDeadline.Before(begun.Add(own)) {
		left := callerDeadline.Sub(begun)
		if left <= 0 {
			return errdefs.New(errdefs.Timeout, "worker did not load the skill: the caller's deadline had passed before the worker's start began (the backend alone allows a start %s)", own)
		}
		return errdefs.New(errdefs.Timeout, "worker did not load the skill before the caller's deadline, %s after the worker's start began (the backend alone allows a start %s)", left.Round(time.Millisecond), own)
	}
	return errdefs.New(errdefs.Timeout, "worker did not load the skill within the backend's start allowance of %s (the %s call timeout + %s to start Deno and Pyodide)", own, timeout, backend.StartAllowance)
}

// frame prefixes payload with its 4-byte big-endian length.
func frame(payload []byte) []byte {
	n := len(payload)
	return append([]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}, payload...)
}

func (b *box) Call(ctx context.Context, req sandbox.Request) (*sandbox.Result, error) {
	if b.closed.Load() {
		return nil, errdefs.New(errdefs.Unavailable, "sandbox is closed")
	}
	if b.sessionMode() {
		return b.callSession(ctx, req)
	}
	p, err := b.take(ctx)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, b.lim.Timeout)
	defer cancel()
	value, err := p.Call(cctx, b.nextID.Add(1), req.Params, req.Config)
	p.calls++
	var ended *worker.EndedError
	if err != nil && !errors.As(err, &ended) && p.Conn.Broken() {
		// Timeout, harness error, broken protocol, dead host: the host
		// is retired (killed, with the call's worker).
		err = b.limitErr(p, err) // before Close removes the group
		b.retire(p, true)
		return backend.NewResult(nil, p.Stdout, p.Stderr), backend.TimeoutError(cctx, b.lim, b.spec.SkillID, err)
	}
	p.SettleOutput(cctx)
	if ended != nil {
		// The call's worker ended itself (os._exit, os.kill): reported as
		// a worker process's end, with its stderr's tail.
		err = &errdefs.SkillError{Type: worker.TypeWorkerExited, Message: ended.Error(), Traceback: string(p.Stderr.Tail(stderrTail))}
	}
	var r *sandbox.Result
	if err == nil {
		r = result(value, p, nil)
		r.Warnings = append(r.Warnings, b.warnings...)
	} else {
		r = backend.NewResult(nil, p.Stdout, p.Stderr) // what it printed before it failed
	}
	if p.untracked != nil {
		r.Warnings = append(r.Warnings, "pyodide: the host process is not reused after this call: "+p.untracked.Error())
	}
	p.credited = [2]int64{p.Stdout.Written(), p.Stderr.Written()}
	b.release(p)
	return r, err
}

// stderrTail is how much of a call's stderr a WorkerExited error carries.
const stderrTail = 2048

// hostGrace is how long past the call's timeout a host waits before it
// terminates the call's worker itself.
const hostGrace = time.Second

// take returns an armed host: an idle one, or a new one when none is
// being started or re-armed and fewer than MaxWorkers are live; otherwise
// it waits for one.
func (b *box) take(ctx context.Context) (*proc, error) {
	for {
		select {
		case p := <-b.idle:
			if p.Exited() || p.Conn.Broken() { // died while idle: its state is unknown
				b.retire(p, false)
				continue
			}
			return p, nil
		default:
		}
		b.mu.Lock()
		if b.arming == 0 && b.live < b.d.opts.MaxWorkers {
			// One host starts at a time (it counts as arming): a burst of
			// calls waits for hosts that free up rather than starting
			// MaxWorkers Pyodide compilations at once.
			b.live++
			b.arming++
			b.mu.Unlock()
			p, err := b.start(ctx, worker.ModeSingle)
			b.mu.Lock()
			b.arming--
			if err != nil {
				b.live--
			}
			b.signal()
			b.mu.Unlock()
			if err != nil {
				return nil, err
			}
			return p, nil
		}
		changed := b.changed
		b.mu.Unlock()
		select {
		case p := <-b.idle:
			b.idle <- p // checked at the top
		case <-changed:
		case <-ctx.Done():
			return nil, ctxErr(ctx)
		}
	}
}

// signal wakes the callers waiting in take; b.mu is held.
func (b *box) signal() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// release hands a host back after a call: retired after Options.Recycle
// calls (a replacement starts in the background), otherwise re-armed in
// the background once the call's worker has ended and the host is checked
// to be as it started (checkHost), its output captures cleared for the
// next call (rearm).
func (b *box) release(p *proc) {
	if p.calls >= b.d.opts.Recycle || b.closed.Load() || p.untracked != nil {
		b.retire(p, false)
		b.replace()
		return
	}
	b.mu.Lock()
	b.arming++
	b.mu.Unlock()
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		err := b.awaitEnded(p)
		if err == nil {
			err = checkHost(p)
		}
		if err == nil {
			ctx, cancel := context.WithTimeout(b.life, b.lim.Timeout+backend.StartAllowance)
			err = b.rearm(ctx, p)
			cancel()
		}
		b.mu.Lock()
		b.arming--
		b.mu.Unlock()
		if err != nil {
			// The host is killed (with whatever its last worker still
			// runs); the next call starts a host of its own.
			b.retire(p, false)
			b.replace()
			return
		}
		b.idle <- p
		b.mu.Lock()
		b.signal()
		b.mu.Unlock()
		if b.closed.Load() {
			b.drain()
		}
	}()
}

// awaitEnded waits until the Web Worker of p's last call has ended, so
// that nothing of that call still runs, or holds memory, when the next
// call's skill is imported into the same host. The host terminated the
// worker before replying, but Deno ends a worker only when its code
// returns to the event loop (a worker busy in a loop keeps running and
// burning CPU after terminate(): denoland/deno#35657), and V8 frees a
// worker's memory only when its thread ends; a next call armed before
// that would share the host's group with it (OOM-killed for what the last
// call used). What remains are the Idle started workers, which hold no
// skill code. The call's worker is one of p.pool, the worker threads
// before its skill was imported, and is known by its thread id, not its
// name: the skill may have renamed its thread (process.title), which a
// count of threads named worker-* took for an ended worker. Nor is its
// own thread enough: it may have started a nested Worker, which Deno does
// not stop with its parent when it is busy, and which no name or count
// tells from Deno's own threads; it was born in the cgroup the call's
// thread was moved to before the import (track), which must be empty too
// (workerGroup.strays). A worker that has not ended within workerEndWait
// is an error: the caller retires the host, which kills it.
func (b *box) awaitEnded(p *proc) error {
	deadline := time.Now().Add(workerEndWait)
	wait := 500 * time.Microsecond
	for {
		pid := p.Cmd.Process.Pid
		n := p.cg.workerThreads(pid)
		left := p.cg.alive(pid, p.pool)
		strays := p.cg.strays()
		if n <= b.d.opts.Idle && (len(p.pool) == 0 || left < len(p.pool)) && strays == 0 { // n -1: cannot count
			return nil
		}
		if time.Now().After(deadline) || b.closed.Load() {
			return fmt.Errorf("the last call's Web Worker had not ended %s after its call (%d worker threads, want %d; %d of the %d started before its import, want %d; %d threads it started, want 0)",
				workerEndWait, n, b.d.opts.Idle, left, len(p.pool), len(p.pool)-1, strays)
		}
		time.Sleep(wait)
		wait = min(2*wait, 10*time.Millisecond)
	}
}

// track records p's idle Web Worker threads before its next call's skill
// is imported (p.pool) and places each in a cgroup of its own
// (workerGroup.track), so that awaitEnded sees any thread the call's
// worker starts; where they cannot be placed, p.untracked says why.
func (b *box) track(ctx context.Context, p *proc) {
	p.pool = b.idleWorkers(ctx, p)
	p.untracked = p.cg.track(p.pool)
}

// idleWorkers returns the ids of p's Web Worker threads before its next
// call's skill is imported (proc.pool). A host starts its first worker
// only once it has compiled Pyodide: until a worker thread is there, it
// waits (the init waits for that worker anyway). Where threads cannot be
// listed, nil.
func (b *box) idleWorkers(ctx context.Context, p *proc) map[int]bool {
	wait := 500 * time.Microsecond
	for {
		pid := p.Cmd.Process.Pid
		if ids := p.cg.idleWorkers(pid); ids != nil || p.cg.workerThreads(pid) < 0 {
			return ids
		}
		if p.Exited() || ctx.Err() != nil {
			return nil
		}
		select {
		case <-ctx.Done():
		case <-p.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, 10*time.Millisecond)
	}
}

// rearm loads the skill into p's next call worker behind a fresh output
// mark. The last call's worker has ended (awaitEnded), but what it wrote
// straight to the host's fds 1 and 2 (Deno.stdout, node:fs, node:process:
// not through the host's relay, which stops at its reply) may still be in
// the pipes or on its way: the host writes the mark to both first, before
// the next worker imports anything, and the captures record only what
// follows it, so none of it is the next call's output. Output after what
// the last call was credited with, before the mark or in the captures
// already (the last call wrote past its reply), or a mark missing, retires
// the host: what such a worker left in flight is not waited for.
func (b *box) rearm(ctx context.Context, p *proc) error {
	if err := p.SettleOutput(ctx); err != nil {
		return err
	}
	if late := p.Stdout.Written() - p.credited[0] + p.Stderr.Written() - p.credited[1]; late > 0 {
		return fmt.Errorf("%d bytes reached the host's stdout and stderr after its last call's reply", late)
	}
	mark := newMark()
	p.Stdout.ResetAfter(mark)
	p.Stderr.ResetAfter(mark)
	b.track(ctx, p)
	if p.untracked != nil {
		return p.untracked
	}
	if err := b.load(ctx, p, worker.ModeSingle, string(mark)); err != nil {
		return err
	}
	// The host wrote the mark before its reply: it is in the pipes.
	if err := p.SettleOutput(ctx); err != nil {
		return err
	}
	for _, c := range []struct {
		name string
		c    *worker.Capture
	}{{"stdout", p.Stdout}, {"stderr", p.Stderr}} {
		seen, skipped := c.c.Marked()
		if !seen {
			return fmt.Errorf("the host's %s lacks the output mark of its init", c.name)
		}
		if skipped > 0 {
			return fmt.Errorf("%d bytes reached the host's %s after its last call's reply", skipped, c.name)
		}
	}
	return nil
}

// newMark returns an output mark no skill code could have known.
func newMark() []byte {
	var r [16]byte
	rand.Read(r[:])
	return []byte("\n[skillbox-mark " + hex.EncodeToString(r[:]) + "]\n")
}

// checkHost checks the process-wide state a call's worker can change
// with its permissions and that no call's end restores: the host's
// working directory (Deno.chdir and process.chdir reach the whole process;
// a worker may enter the folders it can read). A host changed is retired.
func checkHost(p *proc) error {
	if p.cwd == "" {
		return nil
	}
	if cwd := procCwd(p.Cmd.Process.Pid); cwd != p.cwd {
		return fmt.Errorf("the host's working directory is %q, not %q as at its start", cwd, p.cwd)
	}
	return nil
}

// procCwd is the working directory of process pid ("" where /proc does
// not tell).
func procCwd(pid int) string {
	cwd, _ := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
	return cwd
}

// workerEndWait bounds how long a host waits for its last call's worker
// to end (a few milliseconds when the machine is not overloaded) before it
// is retired instead.
const workerEndWait = 2 * time.Second

// replace starts a host in the background, when none is live (a recycled
// host's successor), so the next call finds one armed.
func (b *box) replace() {
	b.mu.Lock()
	if b.closed.Load() || b.live > 0 || b.arming > 0 {
		b.mu.Unlock()
		return
	}
	b.live++
	b.arming++
	b.mu.Unlock()
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		p, err := b.start(b.life, worker.ModeSingle)
		b.mu.Lock()
		b.arming--
		if err != nil {
			b.live--
		}
		b.signal()
		b.mu.Unlock()
		if err == nil {
			b.idle <- p
			if b.closed.Load() {
				b.drain()
			}
		}
	}()
}

// retire kills a host (now, or in the background) and forgets it.
func (b *box) retire(p *proc, now bool) {
	b.mu.Lock()
	b.live--
	b.signal()
	b.mu.Unlock()
	if now {
		p.Close()
		return
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		p.Close()
	}()
}

func (b *box) callSession(ctx context.Context, req sandbox.Request) (*sandbox.Result, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.session == nil {
		p, err := b.start(ctx, worker.ModeSession)
		if err != nil {
			return nil, err
		}
		b.session = p
	}
	p := b.session
	p.Stdout.Reset()
	p.Stderr.Reset()
	cctx, cancel := context.WithTimeout(ctx, b.lim.Timeout)
	defer cancel()
	value, err := p.Call(cctx, b.nextID.Add(1), req.Params, req.Config)
	if err != nil {
		// A failed session call leaves the worker in an unknown state.
		err = b.limitErr(p, err) // before Close removes the group
		p.Close()
		b.session = nil
		return backend.NewResult(nil, p.Stdout, p.Stderr), backend.TimeoutError(cctx, b.lim, b.spec.SkillID, err)
	}
	p.SettleOutput(cctx)
	r := result(value, p, nil)
	r.Warnings = append(r.Warnings, b.warnings...)
	return r, nil
}

func result(value []byte, p *proc, state *os.ProcessState) *sandbox.Result {
	r := backend.NewResult(value, p.Stdout, p.Stderr)
	if state != nil {
		r.Usage.MaxRSS, r.Usage.CPUTime = worker.Usage(state)
	}
	return r
}

// ctxErr is the error of a call whose context ended while it waited for a
// worker: a timeout when its deadline passed, canceled when the caller
// cancelled it (as the linux backend reports it: exit 130 in the CLI).
func ctxErr(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return errdefs.New(errdefs.Timeout, "no worker became free before the call's deadline")
	}
	return errdefs.Wrap(errdefs.Canceled, ctx.Err(), "call cancelled while it waited for a worker")
}

// drain closes every idle worker.
func (b *box) drain() {
	for {
		select {
		case p := <-b.idle:
			b.retire(p, true)
		default:
			return
		}
	}
}

// Close kills every worker of the sandbox and waits for them.
func (b *box) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	b.cancel()
	b.wg.Wait()
	b.drain()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.session != nil {
		b.session.Close()
		b.session = nil
	}
	return nil
}
