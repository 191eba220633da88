package jailbuild

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/jail"
	"github.com/skillbox-dev/skillbox/internal/pyinterp"
	"github.com/skillbox-dev/skillbox/internal/skillenv"
	"github.com/skillbox-dev/skillbox/internal/skillenv/envtest"
)

// need skips a test on a host where builds cannot run in a jail.
func need(t *testing.T) (python string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: jails are tested as root (CI runs as root)")
	}
	if err := jail.Usable(); err != nil {
		t.Skipf("host cannot build jails: %v", err)
	}
	if _, err := skillenv.PipWheel(); err != nil {
		t.Skipf("%v (scripts/setup installs it)", err)
	}
	in, err := pyinterp.Resolve(context.Background(), "")
	if err != nil {
		t.Skipf("no python: %v", err)
	}
	return in.Executable
}

// request is a build request for reqs from the index at url, with pip's
// configuration files out of the way.
func request(t *testing.T, python, url string, reqs ...string) skillenv.Request {
	t.Helper()
	idx, err := skillenv.IndexFromEnv(func(k string) string {
		return map[string]string{"PIP_INDEX_URL": url, "PIP_CONFIG_FILE": os.DevNull}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	return skillenv.Request{Python: python, PythonVersion: "3", Requirements: reqs, Index: idx}
}

func cache(t *testing.T) *skillenv.Cache {
	return &skillenv.Cache{Dir: filepath.Join(t.TempDir(), "envs"), Builder: Builder{},
		Bounds: skillenv.Bounds{MaxBytes: 256 << 20, Timeout: 3 * time.Minute}}
}

// A build whose job spec is larger than the kernel lets one argument be
// (128 KiB: here 200 requirements of about 860 bytes, more than a
// manifest may declare, but a Request from the Go API or a long recorded
// set is not a manifest) starts and builds: the spec reaches the build
// script on its standard input, not on its command line.
func TestBuildLargeSpec(t *testing.T) {
	py := need(t)
	wheels := t.TempDir()
	envtest.Wheel(t, wheels, "alpha", "1.0", "X = 1\n")
	url, _ := envtest.Index(t, wheels)
	var reqs []string
	size := 0
	for i := range 200 {
		r := fmt.Sprintf("alpha; python_version >= '3' or platform_release == '%s%d'", strings.Repeat("x", 800), i)
		reqs, size = append(reqs, r), size+len(r)
	}
	if size <= 128<<10 {
		t.Fatalf("the requirements hold %d bytes, want more than one argument may", size)
	}
	var lines []string
	e, err := cache(t).Ensure(context.Background(), request(t, py, url, reqs...), func(l string) { lines = append(lines, l) })
	if err != nil {
		t.Fatalf("%.2000v\n%.2000s", err, strings.Join(lines, "\n"))
	}
	if len(e.Resolved) != 1 || e.Resolved[0].String() != "alpha==1.0" {
		t.Errorf("resolved %+v, want alpha==1.0", e.Resolved)
	}
}

// An environment is built in the jail from a loopback index reached
// through the egress proxy, and works on the host.
func TestBuildInJail(t *testing.T) {
	py := need(t)
	wheels := t.TempDir()
	envtest.Wheel(t, wheels, "alpha", "1.0", "VERSION = '1.0'\nimport beta\n", "beta>=2")
	envtest.Wheel(t, wheels, "beta", "2.0", "VERSION = '2.0'\n")
	envtest.Wheel(t, wheels, "beta", "2.1", "VERSION = '2.1'\n")
	url, fetched := envtest.Index(t, wheels)
	c := cache(t)
	var lines []string
	e, err := c.Ensure(context.Background(), request(t, py, url, "alpha"), func(l string) { lines = append(lines, l) })
	if err != nil {
		t.Fatalf("%v\n%s", err, strings.Join(lines, "\n"))
	}
	if len(e.Resolved) != 2 || e.Resolved[0].String() != "alpha==1.0" || e.Resolved[1].String() != "beta==2.1" ||
		!strings.HasPrefix(e.Resolved[1].Hash, "sha256=") {
		t.Errorf("resolved %+v", e.Resolved)
	}
	if fetched.Load() != 2 {
		t.Errorf("%d files fetched, want 2", fetched.Load())
	}
	out, err := exec.Command(e.Python, "-c", "import alpha, beta, sys; print(alpha.VERSION, beta.VERSION, sys.prefix)").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "1.0 2.1 "+e.Dir {
		t.Errorf("the environment's python: %s %v", out, err)
	}
	if !strings.Contains(strings.Join(lines, "\n"), "Successfully installed alpha-1.0 beta-2.1") {
		t.Errorf("progress lacks pip's output: %q", lines)
	}
	// The tree is the host user's, nothing writable by others.
	filepath.Walk(e.Dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		if info.Mode()&os.ModeSymlink == 0 && info.Mode().Perm()&0o022 != 0 {
			t.Errorf("%s is writable by others: %v", p, info.Mode())
		}
		return nil
	})
}

// A requirement pip cannot satisfy is unavailable with pip's reason.
func TestBuildFailsWithPipsReason(t *testing.T) {
	py := need(t)
	wheels := t.TempDir()
	envtest.Wheel(t, wheels, "alpha", "1.0", "x = 1\n")
	url, _ := envtest.Index(t, wheels)
	c := cache(t)
	var lines []string
	_, err := c.Ensure(context.Background(), request(t, py, url, "gamma>=9"), func(l string) { lines = append(lines, l) })
	if errdefs.KindOf(err) != errdefs.Unavailable || !strings.Contains(err.Error(), "gamma>=9") {
		t.Errorf("err = %v", err)
	}
	if !strings.Contains(strings.Join(lines, "\n"), "No matching distribution found for gamma>=9") {
		t.Errorf("pip's reason not in progress: %q", lines)
	}
}

// hostileAttempts is Python that a source distribution's build runs
// (format: the path to write, the secret's path, a loopback port, a
// marker for the background process, the environment's path): _attempts()
// tries to escape and returns what happened.
const hostileAttempts = `import base64, hashlib, json, os, socket, sys, zipfile

WRITE = %q
SECRET = %q
PORT = %d
MARKER = %q
ENV = %q


def _attempts():
    r = {}
    for p in [WRITE, "/etc/skillbox-hostile", os.path.join(os.path.dirname(ENV), "hostile"), "/proc/1/fd/3/hostile"]:
        try:
            with open(p, "w") as f:
                f.write("x")
            r["write " + p] = "written"
        except OSError as e:
            r["write " + p] = "refused: %%s" %% e
    try:
        with open(SECRET) as f:
            r["read"] = f.read()
    except OSError as e:
        r["read"] = "refused: %%s" %% e
    try:
        socket.create_connection(("127.0.0.1", PORT), timeout=5).close()
        r["direct"] = "connected"
    except OSError as e:
        r["direct"] = "refused: %%s" %% e
    try:
        s = socket.create_connection(("127.0.0.1", 3128), timeout=5)
        s.sendall(b"CONNECT 127.0.0.1:%%d HTTP/1.1\r\nHost: 127.0.0.1:%%d\r\n\r\n" %% (PORT, PORT))
        r["proxy"] = s.recv(200).decode("latin-1").split("\r\n")[0]
        s.close()
    except OSError as e:
        r["proxy"] = "refused: %%s" %% e
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            fd = os.open("/dev/null", os.O_RDWR)
            for i in (0, 1, 2):
                os.dup2(fd, i)
            os.closerange(3, 4096)
            os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(600)", MARKER])
        finally:
            os._exit(1)
    r["background"] = pid
    return r
`

// hostileBackend is an in-tree PEP 517 build backend: what a source
// distribution's build runs. It tries to escape and records what
// happened in the wheel it builds (hostile_results.json).
const hostileBackend = hostileAttempts + `

def _record(files):
    lines = []
    for name, data in files:
        h = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        lines.append("%%s,sha256=%%s,%%d" %% (name, h, len(data)))
    return "\n".join(lines + ["hostile-1.0.dist-info/RECORD,,", ""]).encode()


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    files = [
        ("hostile_results.json", json.dumps(_attempts()).encode()),
        ("hostile-1.0.dist-info/METADATA", b"Metadata-Version: 2.1\nName: hostile\nVersion: 1.0\n"),
        ("hostile-1.0.dist-info/WHEEL", b"Wheel-Version: 1.0\nGenerator: hostile\nRoot-Is-Purelib: true\nTag: py3-none-any\n"),
    ]
    name = "hostile-1.0-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as z:
        for n, d in files:
            z.writestr(n, d)
        z.writestr("hostile-1.0.dist-info/RECORD", _record(files))
    return name
`

// A source distribution's build code (operator opt-in) runs in the jail
// and is contained: it cannot write outside the environment, read a host
// file, reach a loopback port other than the index's, or leave a process
// behind. Here the code is an in-tree PEP 517 backend.
func TestHostileSdistContained(t *testing.T) {
	py := need(t)
	hostileContained(t, py, t.TempDir(), func(dists string, format func(string) string) {
		envtest.Sdist(t, dists, "hostile", "1.0", map[string]string{
			"pyproject.toml":     "[build-system]\nrequires = []\nbuild-backend = \"hostile_backend\"\nbackend-path = [\".\"]\n",
			"PKG-INFO":           "Metadata-Version: 2.1\nName: hostile\nVersion: 1.0\n",
			"hostile_backend.py": format(hostileBackend),
		})
	}, func(e *skillenv.Env) ([]byte, error) {
		sites, _ := filepath.Glob(filepath.Join(e.Dir, "lib", "python3*", "site-packages", "hostile_results.json"))
		if len(sites) != 1 {
			return nil, fmt.Errorf("no results in the environment: %v", sites)
		}
		return os.ReadFile(sites[0])
	})
}

// hostileSetup is a classic sdist's setup.py (after hostileAttempts): it
// runs the attempts whenever setuptools runs it (for the build's
// requirements, then for the wheel) and installs what they returned as
// the module hostile_results.
const hostileSetup = `

from setuptools import setup

with open("hostile_results.py", "w") as f:
    f.write("RESULTS = %%r\n" %% json.dumps(_attempts()))
setup(name="hostile", version="1.0", py_modules=["hostile_results"])
`

// A classic sdist's setup.py, built by setuptools, which pip installs
// into an isolated build environment of its own from the same loopback
// index (Debian's python3-setuptools-whl; wheel packed from Debian's
// python3-wheel): the nested pip runs in the jail too, and the setup
// script is contained as an in-tree backend is.
func TestHostileSetupScriptContained(t *testing.T) {
	need(t)
	// Debian's setuptools wheel is patched for Debian's interpreter
	// (install_layout): the build runs on that one.
	in, err := pyinterp.Resolve(context.Background(), "/usr/bin/python3")
	if err != nil {
		t.Skipf("no Debian python3: %v", err)
	}
	py := in.Executable
	setuptools, _ := filepath.Glob(filepath.Join(skillenv.PipWheels, "setuptools-*-py3-none-any.whl"))
	if len(setuptools) == 0 {
		t.Skipf("no setuptools wheel in %s (Debian's python3-setuptools-whl; scripts/setup installs it)", skillenv.PipWheels)
	}
	dists := t.TempDir()
	data, err := os.ReadFile(setuptools[len(setuptools)-1])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dists, filepath.Base(setuptools[len(setuptools)-1])), data, 0o644); err != nil {
		t.Fatal(err)
	}
	entry := map[string]string{"entry_points.txt": "[distutils.commands]\nbdist_wheel = wheel.bdist_wheel:bdist_wheel\n"}
	if envtest.InstalledWheelWith(t, dists, "/usr/bin/python3", "wheel", "wheel", entry) == "" {
		t.Skip("/usr/bin/python3 has no wheel package to serve (Debian's python3-wheel)")
	}
	hostileContained(t, py, dists, func(dists string, format func(string) string) {
		envtest.Sdist(t, dists, "hostile", "1.0", map[string]string{
			"pyproject.toml": "[build-system]\nrequires = [\"setuptools>=40.8.0\", \"wheel\"]\nbuild-backend = \"setuptools.build_meta:__legacy__\"\n",
			"PKG-INFO":       "Metadata-Version: 2.1\nName: hostile\nVersion: 1.0\n",
			"setup.py":       format(hostileAttempts + hostileSetup),
		})
	}, func(e *skillenv.Env) ([]byte, error) {
		out, err := exec.Command(e.Python, "-c", "import hostile_results; print(hostile_results.RESULTS)").Output()
		return out, err
	})
}

// hostileContained builds the sdist "hostile" that sdist writes into
// dists (format fills in hostileAttempts' values), served with what dists
// holds, with sdists allowed; results reads what the attempts returned
// from the environment. It checks that every attempt failed and that no
// process of the build outlived it.
func hostileContained(t *testing.T, py, dists string, sdist func(dists string, format func(string) string), results func(*skillenv.Env) ([]byte, error)) {
	t.Helper()
	host := t.TempDir()
	write := filepath.Join(host, "written-by-sdist")
	secret := filepath.Join(host, "secret")
	const secretText = "host-secret-0123456789"
	if err := os.WriteFile(secret, []byte(secretText), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var accepted atomic.Int64
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	marker := fmt.Sprintf("skillbox-hostile-sdist-%d", time.Now().UnixNano())
	c := cache(t)
	url, _ := envtest.Index(t, dists)
	req := request(t, py, url, "hostile")
	req.Sdists = true
	key, _ := req.Key()
	envDir := filepath.Join(c.Dir, strings.TrimPrefix(key, "sha256:")[:32])
	sdist(dists, func(src string) string {
		return fmt.Sprintf(src, write, secret, l.Addr().(*net.TCPAddr).Port, marker, envDir)
	})
	var lines []string
	e, err := c.Ensure(context.Background(), req, func(l string) { lines = append(lines, l) })
	if err != nil {
		t.Fatalf("%v\n%s", err, strings.Join(lines, "\n"))
	}
	data, err := results(e)
	if err != nil {
		t.Fatalf("the sdist's results: %v", err)
	}
	var res map[string]any
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatalf("%v: %s", err, data)
	}
	t.Logf("the sdist's attempts: %s", data)
	for k, v := range res {
		s := fmt.Sprint(v)
		if strings.HasPrefix(k, "write ") && !strings.HasPrefix(s, "refused") {
			t.Errorf("%s: %s", k, s)
		}
	}
	if _, err := os.Lstat(write); !os.IsNotExist(err) {
		t.Errorf("the sdist wrote %s on the host: %v", write, err)
	}
	if _, err := os.Lstat(filepath.Join(c.Dir, "hostile")); !os.IsNotExist(err) {
		t.Errorf("the sdist wrote beside the environment: %v", err)
	}
	if r := fmt.Sprint(res["read"]); strings.Contains(r, secretText) || !strings.HasPrefix(r, "refused") {
		t.Errorf("read a host file: %s", r)
	}
	if d := fmt.Sprint(res["direct"]); !strings.HasPrefix(d, "refused") {
		t.Errorf("direct connection: %s", d)
	}
	if p := fmt.Sprint(res["proxy"]); !strings.Contains(p, " 403") {
		t.Errorf("through the proxy: %s", p)
	}
	if n := accepted.Load(); n != 0 {
		t.Errorf("the loopback listener accepted %d connections", n)
	}
	if _, ok := res["background"]; !ok {
		t.Error("the sdist did not start its background process")
	}
	if pids := withMarker(marker); len(pids) > 0 {
		t.Errorf("the sdist's background process outlived the build: pids %v", pids)
	}
}

// withMarker lists the host processes whose command line holds marker.
func withMarker(marker string) []string {
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), marker) {
			out = append(out, e.Name())
		}
	}
	return out
}
