package image

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/egress"
	"github.com/skillbox-dev/skillbox/internal/filelock"
)

// Builder is an image builder installed on this host.
type Builder struct {
	// Name is buildah, podman or docker.
	Name string `json:"name"`
	// Path is the program's path and Version what it says of itself.
	Path    string `json:"path"`
	Version string `json:"version,omitempty"`
	// Runtime is the runc the builder runs RUN steps with.
	Runtime string `json:"runtime,omitempty"`
	// Usable says whether skillbox builds with it; Reason why not.
	Usable bool   `json:"usable"`
	Reason string `json:"reason,omitempty"`
}

// builderNames are the builders skillbox looks for, in order of
// preference.
var builderNames = []string{"buildah", "podman", "docker"}

// installHint says what to install when no builder can be used.
const installHint = "install buildah and runc (Debian: apt-get install buildah runc)"

// Builders lists the image builders found on PATH, in the order skillbox
// prefers them (buildah, podman, docker), each with its version and
// whether skillbox can build with it. It runs each program's --version.
func Builders(ctx context.Context) []Builder {
	var out []Builder
	for _, n := range builderNames {
		p, err := exec.LookPath(n)
		if err != nil {
			continue
		}
		b := Builder{Name: n, Path: p, Usable: true}
		vctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		v, err := exec.CommandContext(vctx, p, "--version").Output()
		cancel()
		b.Version = strings.TrimSpace(string(v))
		if i := strings.IndexByte(b.Version, '\n'); i >= 0 {
			b.Version = b.Version[:i]
		}
		switch {
		case err != nil:
			b.Usable, b.Reason = false, fmt.Sprintf("%s --version failed: %v", n, err)
		case n == "docker":
			// A daemon's builder: its storage is the daemon's (no private
			// root skillbox can clean), its RUN steps run as the
			// daemon's root unless the daemon remaps users, and it
			// cannot read oci-archive: bases.
			b.Usable, b.Reason = false, "docker builds in its daemon's storage, which skillbox cannot keep private or clean, and reads no oci-archive: base"
		}
		if b.Usable && n != "docker" {
			if b.Runtime = findRunc(); b.Runtime == "" {
				b.Usable, b.Reason = false, "runc is not installed (crun, the usual default, fails on hybrid cgroups; chroot isolation would run RUN steps as host root): apt-get install runc"
			}
		}
		out = append(out, b)
	}
	return out
}

// findRunc is runc's path: on PATH, else where Debian puts it (sbin,
// which a user's PATH may lack).
func findRunc() string {
	if p, err := exec.LookPath("runc"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/runc", "/usr/bin/runc", "/sbin/runc"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// DetectBuilder returns the builder skillbox builds with: the first usable
// one of Builders. None is Unavailable, saying what to install.
func DetectBuilder(ctx context.Context) (Builder, error) {
	return DetectBuilderFrom(Builders(ctx))
}

// DetectBuilderFrom is DetectBuilder over a list Builders returned.
func DetectBuilderFrom(bs []Builder) (Builder, error) {
	var why []string
	for _, b := range bs {
		if b.Usable {
			return b, nil
		}
		why = append(why, b.Name+": "+b.Reason)
	}
	if len(why) == 0 {
		return Builder{}, errdefs.New(errdefs.Unavailable, "no image builder (buildah, podman or docker) on PATH: %s", installHint)
	}
	return Builder{}, errdefs.New(errdefs.Unavailable, "no usable image builder (%s): %s", strings.Join(why, "; "), installHint)
}

// BuildOptions say what to build.
type BuildOptions struct {
	// Context is the build's context folder; Dockerfile the Dockerfile's
	// path relative to it (default "Dockerfile"), or absolute, and must
	// stay inside it.
	Context    string
	Dockerfile string
	// Timeout bounds the whole build (default 30 minutes).
	Timeout time.Duration
	// Builder builds; the zero Builder is DetectBuilder's.
	Builder Builder
	// Memory caps each RUN step's memory (a cgroup limit; default
	// DefaultBuildMemory), Processes the processes of all RUN steps
	// running at once (RLIMIT_NPROC of the build's host uid; default
	// DefaultBuildProcesses).
	Memory    int64
	Processes int
	// Network grants the build's RUN steps hosts, reached only through
	// skillbox's egress proxy (Allow, Resolve, limits, CACerts; Audit
	// receives each decision). nil: no network. A build binds no secrets.
	Network *egress.Config
}

// buildProxyAddr is where a granted build's RUN steps reach the egress
// proxy, in the build's own network namespace (as jail.ProxyAddr).
const buildProxyAddr = "127.0.0.1:3128"

// The default limits of a build's RUN steps.
const (
	DefaultBuildMemory    = 2 << 30
	DefaultBuildProcesses = 4096
)

// DefaultBuildTimeout bounds a build when BuildOptions.Timeout is zero.
const DefaultBuildTimeout = 30 * time.Minute

// buildUIDBase is the first host uid (and gid) RUN steps' ids map to: a
// build's root is host uid buildUIDBase, never host root.
const buildUIDBase = 1_500_000_000

// buildIDMap maps the build's uids (and gids) 0-65535 from buildUIDBase.
var buildIDMap = fmt.Sprintf("0:%d:65536", buildUIDBase)

// Build builds the Dockerfile with an installed builder and imports the
// result into the cache, where it is pinned by digest like any image: the
// returned Image's Pinned is what a trust entry or lockfile records. The
// built image is kept as an OCI archive, the cache folder's
// .built/NAME.tar, its Pinned.Ref, so Ensure unpacks it again as long as
// Prune has not removed the image (which removes the archive with it).
//
// Every Dockerfile is treated as hostile. Before the builder runs,
// checkDockerfile refuses an image from anywhere but the context folder
// or a loopback registry, ADD from a URL (or a variable that could be
// one), RUN --mount but of a tmpfs or a plain cache, and RUN steps asking
// for a network or no confinement; checkContextLinks refuses a link out
// of the context folder. The builder (buildah, else podman) then runs
// with: its own storage under a fresh folder of the cache (removed
// afterwards, with everything it built), OCI isolation with runc (never
// chroot, which would run RUN steps as host root), a user namespace
// mapping the build's root to an unprivileged host uid, a network
// namespace of its own holding only loopback (with opts.Network, also the
// egress proxy, which decides every request; see run) and RUN steps with
// no network without one, no pulls (the loopback registry bases the
// Dockerfile names are pulled first, outside that namespace), no host
// volumes, no credentials, the docker format's ONBUILD ignored (OCI
// format), memory and process limits, and the Timeout. Its output goes to
// c.Progress as lines. A RUN step that fails is Invalid, a build over
// its Timeout Timeout.
func (c *Cache) Build(ctx context.Context, opts BuildOptions) (*Image, error) {
	ctxDir, dockerfile, text, err := buildInputs(opts)
	if err != nil {
		return nil, err
	}
	if n := opts.Network; n != nil {
		if len(n.Secrets) > 0 {
			return nil, errdefs.New(errdefs.Invalid, "build: a build's network grant binds no secrets")
		}
		if len(n.Allow) == 0 {
			return nil, errdefs.New(errdefs.Invalid, "build: a network grant without a host")
		}
		if err := n.Validate(); err != nil {
			return nil, err
		}
	}
	pulls, err := checkDockerfile(text, ctxDir, opts.Network != nil)
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", dockerfile, err)
	}
	if err := checkContextLinks(ctxDir); err != nil {
		return nil, err
	}
	if !buildsSupported {
		return nil, errdefs.New(errdefs.Unsupported, "image builds run Linux containers: build on Linux")
	}
	b := opts.Builder
	if b.Name == "" {
		if b, err = DetectBuilder(ctx); err != nil {
			return nil, err
		}
	}
	if !b.Usable {
		return nil, errdefs.New(errdefs.Unavailable, "image builder %s: %s", b.Name, b.Reason)
	}
	if b.Name != "buildah" && b.Name != "podman" {
		return nil, errdefs.New(errdefs.Unsupported, "image builder %s: skillbox builds with buildah or podman; %s", b.Name, installHint)
	}
	if b.Runtime == "" {
		if b.Runtime = findRunc(); b.Runtime == "" {
			return nil, errdefs.New(errdefs.Unavailable, "image builder %s: runc is not installed: apt-get install runc", b.Name)
		}
	}
	if os.Geteuid() != 0 {
		// Rootless buildah needs the user's /etc/subuid range for its
		// user namespace; not wired yet.
		return nil, errdefs.New(errdefs.Unsupported, "building an image needs root for now (the build's user namespace maps its root to host uid %d); rootless builds are not supported yet", buildUIDBase)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultBuildTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return nil, errdefs.Wrap(errdefs.Unavailable, err, "image cache")
	}
	work, err := os.MkdirTemp(c.Dir, ".build-")
	if err != nil {
		return nil, errdefs.Wrap(errdefs.Unavailable, err, "image cache")
	}
	// Held for the build's life: Prune cleans up a build folder whose
	// lock it can take (its process died).
	unlock, err := filelock.Lock(filepath.Join(work, "lock"), "image build")
	if err != nil {
		os.RemoveAll(work)
		return nil, err
	}
	r := &buildRun{b: b, work: work, ctxDir: ctxDir, progress: c.Progress}
	defer func() {
		r.cleanup()
		unlock()
	}()
	if err := r.setup(pulls); err != nil {
		return nil, err
	}
	c.progress("building %s in %s with %s (%s)", dockerfile, ctxDir, b.Name, b.Version)
	tag := "localhost/skillbox-build-" + filepath.Base(work)[len(".build-"):]
	tag = strings.ToLower(tag)
	sub := "bud"
	if b.Name == "podman" {
		sub = "build"
	}
	// No pulls during the build. The build step runs in a network
	// namespace of its own (run), where no loopback registry is, so the
	// loopback registry images the Dockerfile names are pulled first, on
	// skillbox's side, by the builder (so their layers get the build's
	// user namespace ids) from those registries only: they are the only
	// registries it is told of (setup), and short names search none.
	if len(pulls) > 0 && b.Name != "buildah" {
		// podman has no global --userns-uid-map for its pull.
		return nil, errdefs.New(errdefs.Unsupported, "image builder %s: a build pulls its loopback registry bases before it starts, which skillbox does with buildah only; %s", b.Name, installHint)
	}
	for _, ref := range pulls {
		if err := r.run(ctx, "pull "+ref.Name, "pull", "--quiet", ref.Name); err != nil {
			return nil, err
		}
	}
	pull := "--pull=never"
	network, extra := "none", []string(nil)
	if opts.Network != nil {
		cfg := *opts.Network
		// Each decision names the Dockerfile built (audit.Egress.ImageBuild).
		name, audit := filepath.Base(dockerfile), cfg.Audit
		if rel, err := filepath.Rel(ctxDir, dockerfile); err == nil {
			name = rel
		}
		cfg.Audit = func(ev egress.Event) {
			ev.ImageBuild = name
			if audit != nil {
				audit(ev)
			}
		}
		p, err := egress.New(cfg)
		if err != nil {
			return nil, err
		}
		defer p.Close()
		r.proxy = p
		// The RUN steps share the builder's network namespace: the
		// builder is started in one holding only loopback and the
		// proxy's listener (run).
		network = "host"
		// With the host's network and a user namespace of its own, a
		// RUN step cannot mount a sysfs (the network namespace is not
		// its user namespace's), so the builder binds the host's /sys
		// with everything mounted under it (its cgroup hierarchies,
		// tracefs). An empty read-only folder takes its place: a bind
		// the operator names wins over the builder's own at the same
		// path.
		sys := filepath.Join(r.tmp, "sys")
		if err := os.Mkdir(sys, 0o555); err != nil {
			return nil, errdefs.Wrap(errdefs.Unavailable, err, "build folder")
		}
		extra = append(extra, "--volume", sys+":/sys:ro")
		// Nor the host's resolv.conf and hosts (the proxy resolves
		// names; there is no DNS server to reach): the image's own.
		extra = append(extra, "--dns=none", "--no-hosts", "--http-proxy=true")
	}
	mem, procs := opts.Memory, opts.Processes
	if mem <= 0 {
		mem = DefaultBuildMemory
	}
	if procs <= 0 {
		procs = DefaultBuildProcesses
	}
	build := append([]string{
		"--isolation", "oci", "--runtime", b.Runtime,
		"--network", network, pull,
		"--userns-uid-map", buildIDMap, "--userns-gid-map", buildIDMap,
		"--memory", fmt.Sprintf("%db", mem), "--ulimit", fmt.Sprintf("nproc=%d:%d", procs, procs),
		"--format", "oci", "--layers=false", "--rm", "--force-rm",
	}, extra...)
	build = append(build, "-f", dockerfile, "-t", tag, ctxDir)
	if err := r.run(ctx, "build", sub, build...); err != nil {
		return nil, err
	}
	archive := filepath.Join(work, "image.tar")
	if err := r.run(ctx, "export", "push", "--quiet", tag, "oci-archive:"+archive); err != nil {
		return nil, err
	}
	p, err := c.Resolve(ctx, Ref{Transport: OCIArchive, Name: archive})
	if err != nil {
		return nil, err
	}
	built := filepath.Join(c.Dir, ".built")
	if err := os.MkdirAll(built, 0o755); err != nil {
		return nil, errdefs.Wrap(errdefs.Unavailable, err, "image cache")
	}
	keep := filepath.Join(built, dirName(p.Digest)+".tar")
	if err := os.Rename(archive, keep); err != nil {
		return nil, errdefs.Wrap(errdefs.Unavailable, err, "image cache")
	}
	c.progress("built %s", p.Digest)
	return c.Ensure(ctx, Pinned{Ref: Ref{Transport: OCIArchive, Name: keep}, Digest: p.Digest, Platform: p.Platform})
}

// buildInputs checks the context folder and the Dockerfile and reads it.
func buildInputs(opts BuildOptions) (ctxDir, dockerfile, text string, err error) {
	if opts.Context == "" {
		return "", "", "", errdefs.New(errdefs.Invalid, "build: no context folder")
	}
	abs, err := filepath.Abs(opts.Context)
	if err == nil {
		ctxDir, err = filepath.EvalSymlinks(abs)
	}
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", "", "", errdefs.New(errdefs.NotFound, "build: context folder %s does not exist", opts.Context)
		}
		return "", "", "", errdefs.Wrap(errdefs.Invalid, err, "build: context folder")
	}
	if fi, err := os.Stat(ctxDir); err != nil || !fi.IsDir() {
		return "", "", "", errdefs.New(errdefs.Invalid, "build: context %s is not a folder", opts.Context)
	}
	df := opts.Dockerfile
	if df == "" {
		df = "Dockerfile"
	}
	if filepath.IsAbs(df) {
		// Compared with the resolved context folder: resolve the
		// Dockerfile's folder too (not the file: a link out of the
		// context is checked below).
		if d, err := filepath.EvalSymlinks(filepath.Dir(df)); err == nil {
			df = filepath.Join(d, filepath.Base(df))
		}
		rel, err := filepath.Rel(ctxDir, df)
		if err != nil {
			return "", "", "", errdefs.New(errdefs.Invalid, "build: Dockerfile %s: %v", df, err)
		}
		df = rel
	}
	rel := filepath.Clean(df)
	if rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", "", "", errdefs.New(errdefs.Denied, "build: Dockerfile %s is outside the context folder %s", opts.Dockerfile, ctxDir)
	}
	dockerfile = filepath.Join(ctxDir, rel)
	if err := insideContext(dockerfile, ctxDir); err != nil {
		return "", "", "", fmt.Errorf("build: Dockerfile: %w", err)
	}
	f, err := os.Open(dockerfile)
	if err != nil {
		return "", "", "", errdefs.Wrap(errdefs.NotFound, err, "build: Dockerfile")
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxDockerfile+1))
	if err != nil {
		return "", "", "", errdefs.Wrap(errdefs.Invalid, err, "build: Dockerfile")
	}
	if len(data) > maxDockerfile {
		return "", "", "", errdefs.New(errdefs.Limit, "build: Dockerfile %s is over 1 MiB", opts.Dockerfile)
	}
	return ctxDir, dockerfile, string(data), nil
}

// buildRun is one build's private builder storage and how to run the
// builder on it.
type buildRun struct {
	b        Builder
	work     string
	ctxDir   string
	progress io.Writer
	env      []string
	// tmp is the builder's TMPDIR (see setup).
	tmp string
	// proxy, with a network grant, serves the build step's RUN steps
	// (run).
	proxy *egress.Proxy
}

func (r *buildRun) path(p string) string { return filepath.Join(r.work, p) }

// setup writes the builder's configuration: no short-name search (an
// unqualified name never reaches docker.io), no credentials, temporary
// files in the private folder.
func (r *buildRun) setup(pulls []Ref) error {
	for _, d := range []string{"root", "runroot", "runc", "home"} {
		if err := os.Mkdir(r.path(d), 0o700); err != nil {
			return errdefs.Wrap(errdefs.Unavailable, err, "build folder")
		}
	}
	// The builder mounts each RUN step's root under TMPDIR, where runc,
	// inside the build's user namespace (an unprivileged host uid), must
	// reach it: every folder on the way must be searchable by anyone,
	// which the cache folder's parents (a home folder) need not be. So
	// TMPDIR is a fresh folder of the system's, searchable, not
	// listable.
	tmp, err := os.MkdirTemp("", "skillbox-build-")
	if err != nil {
		return errdefs.Wrap(errdefs.Unavailable, err, "build folder")
	}
	r.tmp = tmp
	if err := os.WriteFile(r.path("tmpdir"), []byte(tmp), 0o600); err != nil {
		return errdefs.Wrap(errdefs.Unavailable, err, "build folder")
	}
	if err := os.Chmod(tmp, 0o711); err != nil {
		return errdefs.Wrap(errdefs.Unavailable, err, "build folder")
	}
	regs := "unqualified-search-registries = []\nshort-name-mode = \"enforcing\"\n"
	seen := map[string]bool{}
	for _, ref := range pulls {
		// Loopback registries (checkDockerfile let no other through),
		// reached over plain HTTP as skillbox's own pulls are.
		host, _, _ := strings.Cut(ref.Name, "/")
		if !seen[host] {
			seen[host] = true
			regs += fmt.Sprintf("\n[[registry]]\nlocation = %q\ninsecure = true\n", host)
		}
	}
	files := map[string]string{
		"registries.conf": regs,
		"auth.json":       "{}\n",
		"policy.json":     `{"default":[{"type":"insecureAcceptAnything"}]}` + "\n",
		"containers.conf": "[containers]\nvolumes = []\n[engine]\nruntime = \"runc\"\n",
		"storage.conf":    "[storage]\ndriver = \"vfs\"\n",
	}
	for n, s := range files {
		if err := os.WriteFile(r.path(n), []byte(s), 0o600); err != nil {
			return errdefs.Wrap(errdefs.Unavailable, err, "build folder")
		}
	}
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	// An explicit environment: nothing of skillbox's (API keys, docker
	// config) reaches the builder.
	r.env = []string{
		"PATH=" + path,
		"HOME=" + r.path("home"),
		"TMPDIR=" + r.tmp,
		"CONTAINERS_REGISTRIES_CONF=" + r.path("registries.conf"),
		"CONTAINERS_CONF=" + r.path("containers.conf"),
		"CONTAINERS_STORAGE_CONF=" + r.path("storage.conf"),
		"REGISTRY_AUTH_FILE=" + r.path("auth.json"),
		"BUILDAH_ISOLATION=oci",
	}
	return nil
}

// global is the builder's storage flags.
func (r *buildRun) global() []string {
	return []string{
		"--root", r.path("root"), "--runroot", r.path("runroot"), "--storage-driver", "vfs",
	}
}

// run runs the builder's subcommand sub with args, its output as
// progress lines; a failure is an error carrying the output's last lines.
func (r *buildRun) run(ctx context.Context, step, sub string, args ...string) error {
	full := r.global()
	if sub == "pull" {
		// Stored with the build's ids, as a pull by the build itself
		// would be: the layers its RUN steps see are theirs.
		full = append(full, "--userns-uid-map", buildIDMap, "--userns-gid-map", buildIDMap)
	}
	full = append(full, sub, "--signature-policy", r.path("policy.json"))
	if sub == "bud" || sub == "build" {
		// runc keeps its containers' state here, so a build cut short
		// leaves no container that cleanup cannot find.
		full = append(full, "--runtime-flag", "root="+r.path("runc"))
	}
	full = append(full, args...)
	cmd := exec.Command(r.b.Path, full...)
	cmd.Dir = r.ctxDir
	cmd.Env = r.env
	startGroup(cmd)
	start := cmd.Start
	if step == "build" {
		// The builder and runc live in a network namespace holding only
		// loopback, never the host's: what the builder fetches itself (an
		// ADD URL checkDockerfile missed) reaches nothing. With a grant
		// the namespace also holds the proxy's listener, which the RUN
		// steps (--network host) reach; the builder passes the proxy's
		// variables to each RUN step (its --http-proxy, on by default),
		// never into the image.
		addr := ""
		if r.proxy != nil {
			addr = buildProxyAddr
			cmd.Env = append(slices.Clone(r.env), proxyEnv(buildProxyAddr)...)
		}
		keep := make(chan struct{})
		defer close(keep) // the thread that started the builder: Pdeathsig
		var served chan struct{}
		// Run before keep's close: the proxy stops (and its listener
		// closes) once the builder ended.
		defer func() {
			if served != nil {
				r.proxy.Close()
				<-served
			}
		}()
		start = func() error {
			l, err := startIn(addr, cmd.Start, keep)
			if err != nil || l == nil {
				return err
			}
			served = make(chan struct{})
			go func() {
				defer close(served)
				r.proxy.Serve(l)
			}()
			return nil
		}
	}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	tail := &lastLines{max: 20}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		var shown, cut int64
		for sc.Scan() {
			line := sc.Text()
			tail.add(line)
			if r.progress != nil {
				if shown < maxProgress {
					fmt.Fprintf(r.progress, "build: %s\n", line)
					shown += int64(len(line)) + 1
				} else {
					cut += int64(len(line)) + 1
				}
			}
		}
		n, _ := io.Copy(io.Discard, pr) // after a line over the scanner's cap
		if cut += n; r.progress != nil && cut > 0 {
			fmt.Fprintf(r.progress, "build: [%d more bytes of the builder's output not shown]\n", cut)
		}
	}()
	err := start()
	if err != nil {
		pw.Close()
		wg.Wait()
		return errdefs.Wrap(errdefs.Unavailable, err, "run "+r.b.Name)
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			// The whole process group: the builder and the runc it
			// started; containers runc left are killed in cleanup.
			killGroup(cmd)
		case <-done:
		}
	}()
	err = cmd.Wait()
	close(done)
	pw.Close()
	wg.Wait()
	if ctx.Err() != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return errdefs.New(errdefs.Timeout, "image build: %s did not finish in time (BuildOptions.Timeout)", step)
		}
		return errdefs.Wrap(errdefs.Canceled, ctx.Err(), "image build: "+step)
	}
	if err != nil {
		hint := ""
		if step == "build" && r.proxy == nil {
			hint = " (the build's RUN steps have no network: an operator grants hosts with 'skillbox image build --allow-net HOST[:PORT]' or the policy file's skills.ID.build_net)"
		}
		return errdefs.New(errdefs.Invalid, "image build: %s failed (%v)%s: %s", step, err, hint, tail.String())
	}
	return nil
}

// proxyEnv are the proxy variables the builder passes to RUN steps,
// pointing at the egress proxy on addr. No NO_PROXY: every destination,
// loopback included, is the proxy's to decide.
func proxyEnv(addr string) []string {
	u := "http://" + addr
	return []string{"HTTP_PROXY=" + u, "HTTPS_PROXY=" + u, "http_proxy=" + u, "https_proxy=" + u}
}

// cleanup kills what a cut-short build left running, removes every
// container and image from the private storage, then the storage itself.
func (r *buildRun) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	killContainers(ctx, r.b.Runtime, r.path("runc"))
	for _, args := range [][]string{{"rm", "--all"}, {"rmi", "--all", "--force"}} {
		rm := exec.CommandContext(ctx, r.b.Path, append(r.global(), args...)...)
		rm.Env = r.env
		rm.Run()
	}
	if err := removeBuildFolder(r.work); err != nil && r.progress != nil {
		fmt.Fprintf(r.progress, "image: %v\n", err)
	}
}

// killContainers kills and deletes the runc containers whose state is in
// root: a build's, never another's.
func killContainers(ctx context.Context, runc, root string) {
	if _, err := os.Stat(root); err != nil {
		return
	}
	if runc == "" {
		if runc = findRunc(); runc == "" {
			return
		}
	}
	flags := []string{"--root", root}
	out, err := exec.CommandContext(ctx, runc, append(flags, "list", "-q")...).Output()
	if err != nil {
		return
	}
	for _, id := range strings.Fields(string(out)) {
		exec.CommandContext(ctx, runc, append(flags, "kill", id, "KILL")...).Run()
		exec.CommandContext(ctx, runc, append(flags, "delete", "--force", id)...).Run()
	}
}

// removeBuildFolder removes a build's folder and its TMPDIR.
func removeBuildFolder(work string) error {
	var errs []error
	if b, err := os.ReadFile(filepath.Join(work, "tmpdir")); err == nil {
		tmp := string(b)
		// Only a folder setup made (os.MkdirTemp("", "skillbox-build-")).
		if filepath.Dir(tmp) == filepath.Clean(os.TempDir()) && strings.HasPrefix(filepath.Base(tmp), "skillbox-build-") {
			if err := os.RemoveAll(tmp); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := os.RemoveAll(work); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("could not remove the build folder %s: %w", work, err)
	}
	return nil
}

// pruneBuilds cleans up after builds whose process died: the build
// folders in dir whose lock is free (containers killed, storage removed),
// and built archives in dir/.built older than an hour that no unpacked
// image came from.
func (c *Cache) pruneBuilds() {
	ents, _ := os.ReadDir(c.Dir)
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".build-") || !e.IsDir() {
			continue
		}
		work := filepath.Join(c.Dir, e.Name())
		unlock, ok, err := filelock.TryLock(filepath.Join(work, "lock"), "image build")
		if err != nil || !ok {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		killContainers(ctx, "", filepath.Join(work, "runc"))
		cancel()
		removeBuildFolder(work)
		unlock()
	}
	built, _ := os.ReadDir(filepath.Join(c.Dir, ".built"))
	for _, e := range built {
		name, ok := strings.CutSuffix(e.Name(), ".tar")
		if !ok {
			continue
		}
		if _, err := os.Stat(filepath.Join(c.Dir, name, metaFile)); err == nil {
			continue
		}
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > time.Hour {
			os.Remove(filepath.Join(c.Dir, ".built", e.Name()))
		}
	}
}

// builtArchive reports whether img was built here (Build): its source is
// an archive in the cache's .built folder, removed with it.
func (c *Cache) builtArchive(img *Image) (string, bool) {
	if img.Ref.Transport != OCIArchive || filepath.Dir(img.Ref.Name) != filepath.Join(c.Dir, ".built") {
		return "", false
	}
	return img.Ref.Name, true
}

// lastLines keeps the last max lines written, each cut to maxQuotedLine
// bytes: they end a failed build's error, which reaches the caller, the
// server's log and the audit log, and the build's steps wrote them.
type lastLines struct {
	max   int
	lines []string
}

// maxProgress is how much of the builder's output a build's progress
// shows: its RUN steps write it, and under serve --build-images the
// progress is the server's standard error.
const maxProgress = 1 << 20

// maxQuotedLine is how much of a builder's line a build error quotes.
const maxQuotedLine = 1 << 10

func (l *lastLines) add(s string) {
	if len(s) > maxQuotedLine {
		s = strings.ToValidUTF8(s[:maxQuotedLine], "") + fmt.Sprintf("… [%d more bytes]", len(s)-maxQuotedLine)
	}
	l.lines = append(l.lines, s)
	if len(l.lines) > l.max {
		l.lines = l.lines[1:]
	}
}

func (l *lastLines) String() string { return strings.Join(l.lines, "\n") }
