package jailbuild

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/cgroup"
	"github.com/skillbox-dev/skillbox/internal/egress"
	"github.com/skillbox-dev/skillbox/internal/skillenv"
	"github.com/skillbox-dev/skillbox/internal/skillenv/envtest"
)

// greedyBackend is an in-tree PEP 517 build backend whose build_wheel runs
// BODY (indented) and, should that return, builds a wheel.
const greedyBackend = `import os, sys, time, zipfile

MARKER = %q


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
%s
    name = "greedy-1.0-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as z:
        z.writestr("greedy-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: greedy\nVersion: 1.0\n")
        z.writestr("greedy-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: greedy\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr("greedy-1.0.dist-info/RECORD", "")
    return name
`

// forkBomb forks until the kernel refuses: the first child execs a
// sleeper carrying MARKER (findable on the host), the others sleep.
const forkBomb = `    first = True
    for i in range(100000):
        pid = os.fork()
        if pid == 0:
            try:
                fd = os.open("/dev/null", os.O_RDWR)
                for i in (0, 1, 2):
                    os.dup2(fd, i)
                os.closerange(3, 4096)
                if first:
                    os.execv(sys.executable, [sys.executable, "-S", "-c", "import time; time.sleep(600)", MARKER])
                time.sleep(600)
            finally:
                os._exit(0)
        first = False
    raise RuntimeError("the pids limit did not stop the fork bomb")
`

// memoryHog touches ever more anonymous memory.
const memoryHog = `    hoard = []
    for i in range(256):
        hoard.append(b"\x01" * (8 << 20))
    raise RuntimeError("the memory limit did not stop the build (2 GiB allocated)")
`

// tmpfsHog fills the environment's tmpfs, whose pages are charged to the
// writer's memory cgroup.
const tmpfsHog = `    chunk = b"\x01" * (8 << 20)
    with open(os.path.join(ENV, "ballast"), "wb") as f:
        for i in range(128):
            f.write(chunk)
            f.flush()
    raise RuntimeError("the memory limit did not stop the build (1 GiB written to tmpfs)")
`

// buildGroups lists this process's build groups in the memory and pids
// hierarchies: the ones the Builder creates ("<pid>-build-<n>").
func buildGroups(t *testing.T) []string {
	t.Helper()
	h, err := cgroup.Detect()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range []string{cgroup.Memory, cgroup.Pids} {
		v, dir := h.Where(c)
		if v == 0 {
			t.Skipf("no %s controller", c)
		}
		m, _ := filepath.Glob(filepath.Join(dir, cgroup.Parent, strconv.Itoa(os.Getpid())+"-build-*"))
		out = append(out, m...)
	}
	return out
}

// greedyBuild builds an sdist whose backend runs body, with bounds, and
// returns the build's error; it checks that no process and no build group
// of this test is left behind.
func greedyBuild(t *testing.T, body string, b skillenv.Bounds) (error, []string) {
	py := need(t)
	before := buildGroups(t)
	marker := fmt.Sprintf("skillbox-greedy-sdist-%d", time.Now().UnixNano())
	c := &skillenv.Cache{Dir: filepath.Join(t.TempDir(), "envs"), Builder: Builder{}, Bounds: b}
	dists := t.TempDir()
	url, _ := envtest.Index(t, dists)
	req := request(t, py, url, "greedy")
	req.Sdists = true
	key, _ := req.Key()
	envDir := filepath.Join(c.Dir, strings.TrimPrefix(key, "sha256:")[:32])
	src := fmt.Sprintf(greedyBackend, marker, body)
	src = strings.Replace(src, "MARKER = ", fmt.Sprintf("ENV = %q\nMARKER = ", envDir), 1)
	envtest.Sdist(t, dists, "greedy", "1.0", map[string]string{
		"pyproject.toml":    "[build-system]\nrequires = []\nbuild-backend = \"greedy_backend\"\nbackend-path = [\".\"]\n",
		"PKG-INFO":          "Metadata-Version: 2.1\nName: greedy\nVersion: 1.0\n",
		"greedy_backend.py": src,
	})
	var mu sync.Mutex
	var lines []string
	_, err := c.Ensure(context.Background(), req, func(l string) {
		mu.Lock()
		lines = append(lines, l)
		mu.Unlock()
	})
	if pids := withMarker(marker); len(pids) > 0 {
		t.Errorf("a process of the build outlived it: pids %v", pids)
	}
	for _, g := range buildGroups(t) {
		if !slices.Contains(before, g) {
			t.Errorf("the build's cgroup %s is left behind", g)
		}
	}
	if _, serr := os.Stat(envDir); !os.IsNotExist(serr) {
		t.Errorf("a failed build left %s: %v", envDir, serr)
	}
	return err, lines
}

// A source distribution whose build forks without end is stopped by the
// build's pids limit: the build fails, unavailable, naming the limit.
func TestBuildPidsLimit(t *testing.T) {
	err, lines := greedyBuild(t, forkBomb, skillenv.Bounds{MaxBytes: 64 << 20, MaxPids: 48, Timeout: 3 * time.Minute})
	if errdefs.KindOf(err) != errdefs.Unavailable || !strings.Contains(err.Error(), "pids limit (48 ") {
		t.Errorf("err = %v; want unavailable naming the pids limit\n%s", err, strings.Join(lines, "\n"))
	}
}

// sleeper starts a child that carries MARKER (findable on the host) in a
// session of its own, then sleeps past any test's time limit.
const sleeper = `    import subprocess
    subprocess.Popen([sys.executable, "-S", "-c", "import time; time.sleep(600)", MARKER], start_new_session=True,
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(600)
    raise RuntimeError("the time limit did not stop the build")
`

// A build that outlasts its time limit is stopped, every process of it
// with it (a child in a session of its own too), and is unavailable
// naming the requirement and the limit.
func TestBuildTimeLimit(t *testing.T) {
	err, lines := greedyBuild(t, sleeper, skillenv.Bounds{MaxBytes: 64 << 20, Timeout: 20 * time.Second})
	if errdefs.KindOf(err) != errdefs.Unavailable || !strings.Contains(err.Error(), "building the environment for greedy took longer than 20s") {
		t.Errorf("err = %v; want unavailable naming the time limit\n%s", err, strings.Join(lines, "\n"))
	}
}

// A build that takes more memory than its limit is killed, whether the
// memory is its processes' or the pages it writes to its tmpfs.
func TestBuildMemoryLimit(t *testing.T) {
	for name, body := range map[string]string{"anonymous": memoryHog, "tmpfs": tmpfsHog} {
		t.Run(name, func(t *testing.T) {
			err, lines := greedyBuild(t, body, skillenv.Bounds{MaxBytes: 1 << 30, MaxMemory: 160 << 20, Timeout: 3 * time.Minute})
			if errdefs.KindOf(err) != errdefs.Unavailable || !strings.Contains(err.Error(), "memory limit (160MiB") {
				t.Errorf("err = %v; want unavailable naming the memory limit\n%s", err, strings.Join(lines, "\n"))
			}
		})
	}
}

// The build's egress decisions go to the sink of its context: the index's
// host allowed, any other host denied.
func TestBuildEgressAudited(t *testing.T) {
	py := need(t)
	dists := t.TempDir()
	url, _ := envtest.Index(t, dists)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	other := l.Addr().(*net.TCPAddr).Port
	body := fmt.Sprintf(`    import socket, urllib.parse
    proxy = urllib.parse.urlsplit(os.environ.get("HTTP_PROXY") or os.environ["http_proxy"])
    s = socket.create_connection((proxy.hostname, proxy.port), timeout=10)
    s.sendall(b"CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n")
    s.recv(200)
    s.close()
`, other, other)
	envtest.Sdist(t, dists, "greedy", "1.0", map[string]string{
		"pyproject.toml":    "[build-system]\nrequires = []\nbuild-backend = \"greedy_backend\"\nbackend-path = [\".\"]\n",
		"PKG-INFO":          "Metadata-Version: 2.1\nName: greedy\nVersion: 1.0\n",
		"greedy_backend.py": fmt.Sprintf(greedyBackend, "unused", body),
	})
	req := request(t, py, url, "greedy")
	req.Sdists = true
	var mu sync.Mutex
	var events []egress.Event
	ctx := egress.WithAudit(context.Background(), func(ev egress.Event) {
		mu.Lock()
		events = append(events, ev)
		mu.Unlock()
	})
	var lines []string
	if _, err := cache(t).Ensure(ctx, req, func(l string) { lines = append(lines, l) }); err != nil {
		t.Fatalf("%v\n%s", err, strings.Join(lines, "\n"))
	}
	index := strings.TrimPrefix(strings.Split(strings.TrimPrefix(url, "http://"), "/")[0], "")
	var allowed, denied bool
	mu.Lock()
	defer mu.Unlock()
	for _, ev := range events {
		dest := net.JoinHostPort(ev.Host, strconv.Itoa(ev.Port))
		switch {
		case ev.Decision == egress.DecisionAllow && dest == index:
			allowed = true
		case ev.Decision == egress.DecisionDeny && ev.Port == other:
			denied = true
		}
	}
	if !allowed || !denied {
		t.Errorf("audited %+v; want the index %s allowed and 127.0.0.1:%d denied", events, index, other)
	}
}

// On a host without the memory and pids controllers a build is refused,
// unavailable, naming the missing layer; with best-effort it runs without
// them (the pids limit as RLIMIT_NPROC), saying so on its progress.
func TestBuildWithoutControllers(t *testing.T) {
	py := need(t)
	wheels := t.TempDir()
	envtest.Wheel(t, wheels, "alpha", "1.0", "VERSION = '1.0'\n")
	url, _ := envtest.Index(t, wheels)
	c := cache(t)
	c.Builder = Builder{Cgroups: &cgroup.Host{}} // a host that mounts no controller
	req := request(t, py, url, "alpha")
	_, err := c.Ensure(context.Background(), req, nil)
	if errdefs.KindOf(err) != errdefs.Unavailable || !strings.Contains(err.Error(), "isolation layer memory is missing") {
		t.Fatalf("err = %v; want unavailable naming the missing memory layer", err)
	}
	var lines []string
	e, err := c.Ensure(WithBestEffort(context.Background()), req, func(l string) { lines = append(lines, l) })
	if err != nil {
		t.Fatalf("best-effort: %v\n%s", err, strings.Join(lines, "\n"))
	}
	if len(e.Resolved) != 1 {
		t.Errorf("resolved %v", e.Resolved)
	}
	var warned []string
	for _, l := range lines {
		if strings.HasPrefix(l, "best-effort: building without the cgroup controller ") {
			warned = append(warned, l)
		}
	}
	if len(warned) != 2 {
		t.Errorf("best-effort lines %q, want one per missing controller", warned)
	}
}

// An environment that takes most of the build's memory limit (its tmpfs
// pages count) still builds and is copied out: the copy's page cache is
// reclaimed, not an OOM kill. The wheel is small (its file compresses), so
// pip's install fits and only the copy goes past the limit's worth of
// pages.
func TestBuildNearMemoryLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: the copy waits for writeback at the memory limit (about 2 minutes under load)")
	}
	py := need(t)
	before := buildGroups(t)
	wheels := t.TempDir()
	envtest.WheelOf(t, wheels, "bulky", "1.0", map[string]string{
		"bulky.py":  "X = 1\n",
		"bulky.dat": strings.Repeat("skillbox environment ballast\n", (144<<20)/29),
	})
	url, _ := envtest.Index(t, wheels)
	c := &skillenv.Cache{Dir: filepath.Join(t.TempDir(), "envs"), Builder: Builder{},
		Bounds: skillenv.Bounds{MaxBytes: 512 << 20, MaxMemory: 256 << 20, Timeout: 3 * time.Minute}}
	var lines []string
	e, err := c.Ensure(context.Background(), request(t, py, url, "bulky"), func(l string) { lines = append(lines, l) })
	if err != nil {
		t.Fatalf("%v\n%s", err, strings.Join(lines, "\n"))
	}
	sites, _ := filepath.Glob(filepath.Join(e.Dir, "lib", "python3*", "site-packages", "bulky.dat"))
	if len(sites) != 1 {
		t.Fatalf("bulky.dat not in the environment: %v", sites)
	}
	if fi, err := os.Stat(sites[0]); err != nil || fi.Size() < 140<<20 {
		t.Errorf("bulky.dat: %v %v", fi, err)
	}
	for _, g := range buildGroups(t) {
		if !slices.Contains(before, g) {
			t.Errorf("the build's cgroup %s is left behind", g)
		}
	}
}
