package jailbuild

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/cgroup"
	"github.com/skillbox-dev/skillbox/internal/egress"
	"github.com/skillbox-dev/skillbox/internal/jail"
	"github.com/skillbox-dev/skillbox/internal/pyinterp"
	"github.com/skillbox-dev/skillbox/internal/skillenv"
)

// maxStdout caps what the build script may print on stdout (its one JSON
// line: pip's report).
const maxStdout = 32 << 20

// Builder runs skillenv build jobs in jails. The zero value is ready.
type Builder struct {
	// Resolver looks up the names of the index hosts on the host (nil:
	// net.DefaultResolver); see egressFor.
	Resolver egress.Resolver
	// Cgroups is where the builds' control groups go (nil:
	// cgroup.Detect() at each build).
	Cgroups *cgroup.Host
}

// Build runs job's script as pid 1 of a fresh jail and returns its stdout;
// pip's output (stderr) goes to progress line by line. The jail's root is
// the base interpreter's (pyinterp's HostPaths) plus job.ReadOnly, read-only;
// an empty tmpfs of job.MaxBytes is mounted at job.Dir, the scratch tmpfs
// has job.ScratchBytes, and Landlock lets the build write there and beneath
// job.Out (descriptor 3) only. The jail is born in a control group of its
// own with job.MaxMemory (which both tmpfs' pages count against) and
// job.MaxPids, removed when Build returns; a build that ran into either
// fails naming it, even if pip reported success. The network reaches
// exactly job.Sources' hosts, through an egress proxy whose decisions go
// to egress.AuditFrom(ctx). Every process of the jail is gone when Build
// returns: the script's pid 1 kills them before copying, and the kernel
// kills what is left when pid 1 exits.
func (b Builder) Build(ctx context.Context, job skillenv.Job, progress func(string)) ([]byte, error) {
	if len(job.Argv) == 0 || job.Out == nil || job.OutFD != 3 {
		return nil, errdefs.New(errdefs.Invalid, "environment build: want a program and the output folder at descriptor 3")
	}
	if err := jail.Usable(); err != nil {
		return nil, errdefs.New(errdefs.Unavailable, "building a skill's environment needs the linux jail, which this host cannot build: %v", err)
	}
	if job.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, job.Timeout)
		defer cancel()
	}
	in, err := pyinterp.Resolve(ctx, job.Argv[0])
	if err != nil {
		return nil, err
	}
	eg, err := egressFor(ctx, b.Resolver, job.Sources, job.MaxBytes)
	if err != nil {
		return nil, err
	}
	scratch := job.ScratchBytes
	if scratch <= 0 {
		scratch = skillenv.DefaultScratchBytes
	}
	lim := limitsOf(job)
	spec := jail.Spec{
		Root:         root{interp: in, program: job.Argv[0], ro: job.ReadOnly, env: job.Env},
		ScratchBytes: scratch,
		Egress:       eg,
		OwnFDs:       true,
		Tmpfs:        []jail.TmpfsMount{{Path: job.Dir, Bytes: job.MaxBytes}},
		WriteFDs:     []int{job.OutFD},
	}
	cg, missing, noPids, err := b.buildGroup(ctx, lim)
	if err != nil {
		return nil, err
	}
	if cg != nil {
		// Deferred first, so it runs last: after the jail is gone.
		defer cg.Remove()
	}
	if noPids {
		spec.Nproc = lim.pids
	}
	for _, m := range missing {
		if progress != nil {
			progress("best-effort: building without the cgroup controller " + m)
		}
	}
	j, err := jail.New(spec)
	if err != nil {
		return nil, err
	}
	launch, running := j.Launch(ctx, jail.LaunchOptions{Cgroup: cg})
	defer running.Close()
	cmd := exec.CommandContext(ctx, job.Argv[0], job.Argv[1:]...)
	cmd.ExtraFiles = []*os.File{job.Out}
	cmd.Stdin = bytes.NewReader(job.Stdin)
	var stdout capped
	stdout.max = maxStdout
	cmd.Stdout = &stdout
	lw := &lineWriter{fn: progress}
	cmd.Stderr = lw
	// Nothing outlives pid 1 in its pid namespace; this only bounds the
	// wait for the pipes should that ever not hold.
	cmd.WaitDelay = 10 * time.Second
	if err := launch(cmd); err != nil {
		return nil, startError(err, lim)
	}
	werr := cmd.Wait()
	lw.flush()
	if ctx.Err() != nil {
		if err := limitHit(cg, lim, ""); err != nil {
			// A limit explains why it never finished (a fork bomb's
			// children holding pip's pipes, say).
			return nil, fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return nil, ctx.Err()
	}
	if err := limitHit(cg, lim, lw.tail()); err != nil {
		return nil, err
	}
	if stdout.over {
		return nil, errors.New("the build printed more than its report")
	}
	if werr != nil && stdout.Len() == 0 {
		return nil, fmt.Errorf("the build script failed: %v%s", werr, lw.tail())
	}
	return stdout.Bytes(), nil
}

// root is a build's jail root: the base interpreter, the paths the build
// reads, and the job's environment.
type root struct {
	interp  *pyinterp.Interpreter
	program string
	ro      []string
	env     []string
}

func (r root) Binds() ([]string, error) {
	return append(append(r.interp.HostPaths(), r.program), r.ro...), nil
}

func (r root) Program() string { return r.program }

// Env is the job's environment with HOME and TMPDIR on the scratch tmpfs
// unless the job sets them, and the proxy's variables.
func (r root) Env(granted map[string]string) []string {
	env := map[string]string{"HOME": jail.ScratchDir}
	maps.Copy(env, granted)
	for _, kv := range r.env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	env["TMPDIR"] = jail.ScratchDir // the script's report and pip's temporary files
	out := make([]string, 0, len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}

// egressFor is the proxy's grant for a build: each source URL's host and
// port, nothing else; nil (no network) without sources. The sources are
// the operator's pip configuration, so an index on loopback or a private
// address is granted by that configuration: a name that resolves, here and
// now, only to such addresses is pinned to them (as --egress-resolve
// would), and an address literal is granted as such. Names of public hosts
// are resolved by the proxy, which refuses any private answer.
func egressFor(ctx context.Context, res egress.Resolver, sources []string, maxBytes int64) (*egress.Config, error) {
	if len(sources) == 0 {
		return nil, nil
	}
	if res == nil {
		res = net.DefaultResolver
	}
	cfg := &egress.Config{MaxBytes: max(egress.DefaultMaxBytes, 2*maxBytes)}
	for _, raw := range sources {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
			return nil, errdefs.New(errdefs.Invalid, "pip source %q is not an http(s) URL", skillenv.RedactURLs(raw))
		}
		host, port := strings.ToLower(u.Hostname()), u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		}
		r, err := egress.ParseRule(net.JoinHostPort(host, port))
		if err != nil {
			return nil, errdefs.New(errdefs.Invalid, "pip source %q: %v", skillenv.RedactURLs(raw), err)
		}
		cfg.Allow = append(cfg.Allow, r)
		if _, err := netip.ParseAddr(host); err == nil {
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		addrs, err := res.LookupNetIP(lctx, "ip", host)
		cancel()
		if err != nil || len(addrs) == 0 || !slices.ContainsFunc(addrs, local) || slices.ContainsFunc(addrs, func(a netip.Addr) bool { return !local(a) }) {
			continue
		}
		if cfg.Resolve == nil {
			cfg.Resolve = map[string][]netip.Addr{}
		}
		for _, a := range addrs {
			if !slices.Contains(cfg.Resolve[host], a.Unmap()) {
				cfg.Resolve[host] = append(cfg.Resolve[host], a.Unmap())
			}
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// local reports whether a is a loopback or private address (an index the
// operator runs on this machine or network).
func local(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsLoopback() || a.IsPrivate()
}

// capped is a buffer that keeps at most max bytes.
type capped struct {
	bytes.Buffer
	max  int
	over bool
}

func (c *capped) Write(p []byte) (int, error) {
	if c.Len()+len(p) > c.max {
		c.over = true
		return len(p), nil
	}
	return c.Buffer.Write(p)
}

// lineWriter hands each complete line to fn and keeps the last few for
// error messages.
type lineWriter struct {
	mu   sync.Mutex
	fn   func(string)
	buf  []byte
	last []string
}

const maxLine = 8 << 10

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			// Every whole piece of a line too long, not one per Write:
			// what is kept must not grow with what is written.
			for len(w.buf) > maxLine {
				w.emit(string(w.buf[:maxLine]))
				w.buf = w.buf[maxLine:]
			}
			return len(p), nil
		}
		w.emit(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
}

func (w *lineWriter) emit(l string) {
	l = strings.TrimRight(l, "\r")
	if w.fn != nil {
		w.fn(l)
	}
	if strings.TrimSpace(l) != "" {
		w.last = append(w.last, l)
		if len(w.last) > 5 {
			w.last = w.last[1:]
		}
	}
}

func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.emit(string(w.buf))
		w.buf = nil
	}
}

// tail is the last lines written, for an error message.
func (w *lineWriter) tail() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.last) == 0 {
		return ""
	}
	return ": " + strings.Join(w.last, " | ")
}
