//go:build unix

package pyodide

import (
	"context"
	"encoding/base64"
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
	"syscall"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
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
			return errdefs.New(errdefs.Invalid, "%s is larger than the pyodide backend's %d MiB", what, max>>20)
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

// box runs the calls of one Spec. Single-use: each call takes a worker
// that was started, restored from the snapshot and has imported the skill,
// sends it one call, and lets it exit; a replacement starts in the
// background. Session: one worker serves every call, one at a time.
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
	slots  chan struct{}
	idle   chan *proc
	nextID atomic.Uint64
	closed atomic.Bool
	wg     sync.WaitGroup

	mu      sync.Mutex // filling; session
	filling int
	session *proc
}

func newBox(d *Driver, f files, spec sandbox.Spec, reqNames []string, setup []byte) *box {
	life, cancel := context.WithCancel(context.Background())
	return &box{
		d: d, f: f, spec: spec, lim: spec.Limits.WithDefaults(), reqNames: reqNames, setup: setup,
		life: life, cancel: cancel,
		slots: make(chan struct{}, d.opts.MaxWorkers),
		idle:  make(chan *proc, d.opts.Idle),
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
	b.idle <- p
	return nil
}

// proc is a started worker whose stdout and stderr the box copies itself:
// a single-use call returns as soon as the reply is in and the output
// written before it is drained, without waiting the ~10 ms a Deno process
// takes to exit.
type proc struct {
	*worker.Process
	out, err *stream
	once     sync.Once
	cg       *workerGroup // nil without cgroups
	release  func()       // the jail's host side (egress proxy)
}

// stream copies one of a worker's output pipes into a Capture.
type stream struct {
	f       *os.File
	c       *worker.Capture
	stopped chan struct{}
}

func newStream(f *os.File, c *worker.Capture) *stream {
	s := &stream{f: f, c: c}
	s.start()
	return s
}

// start runs the copy until EOF, an error or drain's deadline.
func (s *stream) start() {
	s.stopped = make(chan struct{})
	go func() {
		defer close(s.stopped)
		buf := make([]byte, 32<<10)
		for {
			n, err := s.f.Read(buf)
			if n > 0 {
				s.c.Write(buf[:n])
			}
			if err != nil {
				return
			}
		}
	}()
}

// drain stops the copy and reads what is left in the pipe without
// blocking. Whatever the worker wrote before its reply is in the pipe
// already (it writes its output synchronously before the reply), so the
// capture is then complete for the call.
func (s *stream) drain() {
	_ = s.f.SetReadDeadline(time.Now())
	<-s.stopped
	_ = s.f.SetReadDeadline(time.Time{})
	rc, err := s.f.SyscallConn()
	if err != nil {
		return
	}
	buf := make([]byte, 32<<10)
	for {
		var n int
		var rerr error
		if err := rc.Read(func(fd uintptr) bool {
			n, rerr = syscall.Read(int(fd), buf)
			return true // never wait: EAGAIN means drained
		}); err != nil || rerr != nil || n <= 0 {
			return
		}
		s.c.Write(buf[:n])
	}
}

// drainOutput completes the captures of a call that has replied; with
// resume (a session worker), copying goes on for the next call.
func (p *proc) drainOutput(resume bool) {
	for _, s := range []*stream{p.out, p.err} {
		s.drain()
		if resume {
			s.start()
		}
	}
}

func (p *proc) closeStreams() {
	p.once.Do(func() {
		p.out.f.Close()
		p.err.f.Close()
	})
}

// Close kills the worker, waits for it and releases its pipes and cgroup.
func (p *proc) Close() error {
	err := p.Process.Close()
	p.closeStreams()
	p.cg.remove()
	p.release()
	return err
}

// limitErr names the cgroup limit a worker that failed ran into, or
// returns err. An OOM kill or a refused thread looks like a dead worker.
func (b *box) limitErr(p *proc, err error) error {
	if p.cg.oomKilled() {
		return &errdefs.LimitError{Resource: "memory", Limit: skill.FormatSize(b.lim.Memory),
			Detail: fmt.Sprintf("the kernel OOM killer stopped the worker (cgroup limit %s: %s worker baseline + the budget)",
				skill.FormatSize(memBaseline+b.lim.Memory), skill.FormatSize(memBaseline))}
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
	ctx, cancel := context.WithTimeout(ctx, b.lim.Timeout+sandbox.StartAllowance)
	defer cancel()
	cg, err := b.cg.newGroup(b.lim)
	if err != nil {
		return nil, errdefs.Wrap(errdefs.Internal, err, "start deno")
	}
	allow := []string{"--allow-read=/dev/fd/3,/dev/fd/5", "--allow-write=/dev/fd/4"}
	if len(b.spec.Network) > 0 {
		// Only with the jail (Open): the proxy is the only route out.
		var hosts []string
		for _, h := range b.spec.Network {
			hosts = append(hosts, h.String())
		}
		allow = append(allow, "--allow-net="+strings.Join(hosts, ","))
	}
	if cert := b.jail.certFile(); cert != "" {
		// With a network grant the jail holds one CA bundle, read-only:
		// the host's, the operator's ca_file and, with secrets bound, the
		// proxy's interception CA (it substitutes the placeholder on the
		// wire). Deno adds it to its own root store (Mozilla's); fetch,
		// and with it the skill's HTTP from Pyodide, verifies against both.
		allow = append(allow, "--cert="+cert)
	}
	args := denoArgs(b.f.rt, b.f.dir, allow, v8Flags(b.lim, cg != nil && b.cg.has("memory")))
	args = append(args, "run")
	cmd := exec.Command(b.f.rt.Deno, args...)
	cmd.Env = denoEnv(b.f.rt)
	cmd.Dir = b.f.dir
	var pipes [6]*os.File // setup r/w, stdout r/w, stderr r/w
	closeAll := func() {
		for _, f := range pipes {
			if f != nil {
				f.Close()
			}
		}
		cg.remove()
	}
	for i := 0; i < 6; i += 2 {
		r, w, err := os.Pipe()
		if err != nil {
			closeAll()
			return nil, errdefs.Wrap(errdefs.Internal, err, "worker pipes")
		}
		pipes[i], pipes[i+1] = r, w
	}
	setupR, setupW, outR, outW, errR, errW := pipes[0], pipes[1], pipes[2], pipes[3], pipes[4], pipes[5]
	cmd.ExtraFiles = []*os.File{setupR} // fd 5, after the protocol's 3 and 4
	cmd.Stdout, cmd.Stderr = outW, errW
	launch, release := b.jail.wrap(ctx, cmd, cg)
	wp, err := worker.StartWith(b.life, cmd, b.lim.Stdio, worker.StartOptions{Launch: launch})
	setupR.Close()
	outW.Close()
	errW.Close()
	if err != nil {
		setupW.Close()
		outR.Close()
		errR.Close()
		cg.remove()
		release()
		return nil, errdefs.Wrap(errdefs.Internal, err, "start deno")
	}
	p := &proc{Process: wp, cg: cg, release: release}
	p.Stdout, p.Stderr = worker.NewCapture(b.lim.Stdio), worker.NewCapture(b.lim.Stdio)
	p.out, p.err = newStream(outR, p.Stdout), newStream(errR, p.Stderr)
	go func() {
		// A worker that dies early makes this fail with EPIPE; Init reports it.
		_, _ = setupW.Write(frame(b.setup))
		setupW.Close()
	}()
	p.Conn.SetMaxResult(int(b.lim.Output))
	ready, err := p.Init(ctx, worker.Init{
		Type:         worker.TypeInit,
		Bundle:       bundleDir,
		Manifest:     b.spec.Manifest,
		Mode:         mode,
		Requirements: b.reqNames,
	})
	if pk, ok := worker.PackagesOf(ready, err); ok {
		// An unmet requirement explains an import error better than the
		// import error does.
		version := ""
		if ready != nil {
			version = ready.Python
		}
		if rerr := sandbox.CheckRequirements(b.spec.Requirements, pk, python(version)); rerr != nil {
			err = rerr
		}
	}
	if err != nil {
		err = b.limitErr(p, err) // before Close removes the group
		p.Close()
		if errors.Is(ctx.Err(), context.DeadlineExceeded) && errdefs.KindOf(err) == errdefs.Timeout {
			return nil, startTimeoutError(b.lim.Timeout, begun, callerDeadline, callerHas)
		}
		return nil, err
	}
	return p, nil
}

// startTimeoutError says which deadline a worker's start ran out of, begun
// at begun under a call timeout of timeout: the caller's (callerDeadline,
// when callerHas), if it came before the backend's own allowance of
// timeout+sandbox.StartAllowance, or that allowance.
func startTimeoutError(timeout time.Duration, begun, callerDeadline time.Time, callerHas bool) error {
	own := timeout + sandbox.StartAllowance
	if callerHas && callerDeadline.Before(begun.Add(own)) {
		left := callerDeadline.Sub(begun)
		if left <= 0 {
			return errdefs.New(errdefs.Timeout, "worker did not load the skill: the caller's deadline had passed before the worker's start began (the backend alone allows a start %s)", own)
		}
		return errdefs.New(errdefs.Timeout, "worker did not load the skill before the caller's deadline, %s after the worker's start began (the backend alone allows a start %s)", left.Round(time.Millisecond), own)
	}
	return errdefs.New(errdefs.Timeout, "worker did not load the skill within the backend's start allowance of %s (the %s call timeout + %s to start Deno and Pyodide)", own, timeout, sandbox.StartAllowance)
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
	select {
	case b.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctxErr(ctx, b.lim)
	}
	defer func() { <-b.slots }()
	p, err := b.take(ctx)
	// The replacement starts once this call is done, not competing with it.
	defer b.refill()
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, b.lim.Timeout)
	defer cancel()
	value, err := p.Call(cctx, b.nextID.Add(1), req.Params, req.Config)
	if err != nil {
		err = b.limitErr(p, err) // before Close removes the group
		p.Close()
		return nil, b.lim.TimeoutError(cctx, b.spec.SkillID, err)
	}
	p.drainOutput(false)
	peak := p.cg.peak()
	// The worker exits on its own after its one call; reap it in the
	// background (Close kills whatever is left).
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		p.Wait()
		p.closeStreams()
		p.cg.remove()
		p.release()
	}()
	r := result(value, p, nil)
	r.Usage.MaxRSS = peak
	r.Warnings = append(r.Warnings, b.warnings...)
	return r, nil
}

// take returns an idle worker, or starts one, and has a replacement
// started in the background.
func (b *box) take(ctx context.Context) (*proc, error) {
	for {
		select {
		case p := <-b.idle:
			if p.Exited() { // died while idle: its state is unknown
				p.Close()
				continue
			}
			return p, nil
		default:
			return b.start(ctx, worker.ModeSingle)
		}
	}
}

// refill starts workers in the background until Idle are waiting.
func (b *box) refill() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.idle)+b.filling < cap(b.idle) && !b.closed.Load() {
		b.filling++
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			p, err := b.start(b.life, worker.ModeSingle)
			b.mu.Lock()
			b.filling--
			b.mu.Unlock()
			if err != nil {
				return // the next call starts its own worker and reports why
			}
			select {
			case b.idle <- p:
				if b.closed.Load() {
					b.drain()
				}
			default:
				p.Close()
			}
		}()
	}
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
		return nil, b.lim.TimeoutError(cctx, b.spec.SkillID, err)
	}
	p.drainOutput(true)
	r := result(value, p, nil)
	r.Warnings = append(r.Warnings, b.warnings...)
	return r, nil
}

func result(value []byte, p *proc, state *os.ProcessState) *sandbox.Result {
	r := sandbox.NewResult(value, p.Stdout, p.Stderr)
	if state != nil {
		r.Usage.MaxRSS, r.Usage.CPUTime = worker.Usage(state)
	}
	return r
}

func ctxErr(ctx context.Context, l sandbox.Limits) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return errdefs.New(errdefs.Timeout, "no worker became free before the call's deadline")
	}
	return errdefs.Wrap(errdefs.Timeout, ctx.Err(), "call cancelled")
}

// drain closes every idle worker.
func (b *box) drain() {
	for {
		select {
		case p := <-b.idle:
			p.Close()
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
