package image

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/filelock"
	"github.com/skillbox-dev/skillbox/internal/image/imagetest"
	"github.com/skillbox-dev/skillbox/internal/pyinterp"
)

// shellImage is a base image made offline from this host's files: dash as
// /bin/sh, bash (for /dev/tcp) and sleep, each with the libraries and loader it
// needs (pyinterp.ELFDeps), nothing else.
func shellImage(t *testing.T) v1.Image {
	t.Helper()
	files := map[string]string{"bin/sh": "/bin/dash", "bin/bash": "/bin/bash", "bin/sleep": "/bin/sleep"}
	links := map[string]string{}
	for _, exe := range []string{"/bin/dash", "/bin/bash", "/bin/sleep"} {
		for _, dep := range pyinterp.ELFDeps(exe) {
			files[dep[1:]] = dep
			// The names the loader looks for (libtinfo.so.6) are links
			// to the real files ELFDeps lists.
			ents, _ := os.ReadDir(filepath.Dir(dep))
			for _, e := range ents {
				p := filepath.Join(filepath.Dir(dep), e.Name())
				if e.Type()&os.ModeSymlink != 0 {
					if r, err := filepath.EvalSymlinks(p); err == nil && r == dep {
						links[p[1:]] = filepath.Base(dep)
					}
				}
			}
		}
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for name := range files {
		for d := filepath.Dir(name); d != "." && !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	for _, d := range append([]string{"."}, append(sortedKeys(dirs), "tmp", "etc", "proc", "dev", "sys")...) {
		tw.WriteHeader(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o755})
	}
	for _, name := range sortedKeys(files) {
		b, err := os.ReadFile(files[name])
		if err != nil {
			t.Skipf("base image: %v", err)
		}
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(b))})
		tw.Write(b)
	}
	for _, name := range sortedKeys(links) {
		if _, ok := files[name]; !ok {
			tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: links[name], Mode: 0o777})
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config.Env = []string{"PATH=/bin"}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// buildContext is a context folder holding the shell base image as
// base.tar (an OCI archive) and the Dockerfile text.
func buildContext(t *testing.T, dockerfile string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ctx")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tarDir(t, writeLayout(t, shellImage(t)), filepath.Join(dir, "base.tar"))
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// needBuilder skips t, saying why, where no builder can build here.
func needBuilder(t *testing.T) {
	t.Helper()
	if !buildsSupported {
		t.Skip("image builds run on Linux only")
	}
	if _, err := DetectBuilder(context.Background()); err != nil {
		t.Skipf("no image builder: %v", err)
	}
	if os.Geteuid() != 0 {
		t.Skip("image builds need root (rootless builds are not supported yet)")
	}
}

// syncBuffer collects progress lines written by the build.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// checkNoBuildLeftovers fails t when a build left its private storage in
// the cache.
func checkNoBuildLeftovers(t *testing.T, c *Cache) {
	t.Helper()
	if m, _ := filepath.Glob(filepath.Join(c.Dir, ".build-*")); len(m) > 0 {
		t.Errorf("build storage left behind: %v", m)
	}
}

func TestBuildFromOCIArchiveIsPinnedAndCached(t *testing.T) {
	needBuilder(t)
	dir := buildContext(t, "FROM oci-archive:base.tar\nRUN echo built > /marker\n")
	c := newCache(t)
	var progress syncBuffer
	c.Progress = &progress
	img, err := c.Build(context.Background(), BuildOptions{Context: dir, Timeout: 10 * time.Minute})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, progress.String())
	}
	if got := readFile(t, filepath.Join(img.Rootfs, "marker")); got != "built\n" {
		t.Errorf("marker = %q", got)
	}
	if img.Ref.Transport != OCIArchive || !strings.HasPrefix(img.Ref.Name, filepath.Join(c.Dir, ".built")+"/") {
		t.Errorf("built image ref = %s", img.Ref)
	}
	if !strings.Contains(progress.String(), "build: STEP 2/2: RUN echo built") {
		t.Errorf("progress lacks the builder's steps:\n%s", progress.String())
	}
	checkNoBuildLeftovers(t, c)

	// Pinned like any image: Ensure finds it; the archive it came from
	// stays beside the cache until the image is pruned, then goes with it.
	again, err := c.Ensure(context.Background(), img.Pinned)
	if err != nil || again.Digest != img.Digest || again.Rootfs != img.Rootfs {
		t.Fatalf("ensure: %v, %v", again, err)
	}
	if !exists(img.Ref.Name) {
		t.Fatalf("built archive %s missing", img.Ref.Name)
	}
	if res, err := c.Prune(nil); err != nil || len(res.Removed) != 1 {
		t.Fatalf("prune: %+v, %v", res, err)
	}
	if exists(img.Ref.Name) || exists(img.Dir) {
		t.Error("prune left the built image or its archive")
	}
	_, err = c.Ensure(context.Background(), img.Pinned)
	wantKind(t, err, errdefs.NotFound, "")
}

func TestBuildFromLoopbackRegistry(t *testing.T) {
	needBuilder(t)
	host := loopbackRegistry(t)
	push(t, host+"/base:1", shellImage(t))
	dir := buildContext(t, "FROM "+host+"/base:1\nRUN echo from-registry > /marker\n")
	c := newCache(t)
	var progress syncBuffer
	c.Progress = &progress
	img, err := c.Build(context.Background(), BuildOptions{Context: dir, Timeout: 10 * time.Minute})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, progress.String())
	}
	if got := readFile(t, filepath.Join(img.Rootfs, "marker")); got != "from-registry\n" {
		t.Errorf("marker = %q", got)
	}
	checkNoBuildLeftovers(t, c)
}

func TestBuildHostileRunSteps(t *testing.T) {
	needBuilder(t)
	// A host file outside the context, and a host service on loopback:
	// neither may be reached by a RUN step.
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("host secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var reached atomic.Int32
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			reached.Add(1)
			conn.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	dir := buildContext(t, fmt.Sprintf(`FROM oci-archive:base.tar
RUN bash -c 'echo hi > /dev/tcp/127.0.0.1/%d' && echo reached > /net || echo unreachable > /nonet
RUN if [ -e %s ]; then echo visible > /leak; else echo absent > /noleak; fi
RUN read -r inside host n < /proc/self/uid_map; echo "$host" > /uidmap
RUN while read -r k v; do case "$k" in Seccomp:|CapEff:) echo "$k $v";; esac; done < /proc/self/status > /status
RUN while read -r a b c d; do case "$a $b" in "Max processes") echo "$c" > /nproc;; esac; done < /proc/self/limits
`, port, secret))
	c := newCache(t)
	var progress syncBuffer
	c.Progress = &progress
	img, err := c.Build(context.Background(), BuildOptions{Context: dir, Timeout: 10 * time.Minute, Processes: 100, Memory: 256 << 20})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, progress.String())
	}
	root := img.Rootfs
	if exists(filepath.Join(root, "net")) || !exists(filepath.Join(root, "nonet")) || reached.Load() != 0 {
		t.Errorf("a RUN step reached the network (%d connections)", reached.Load())
	}
	if exists(filepath.Join(root, "leak")) || !exists(filepath.Join(root, "noleak")) {
		t.Error("a RUN step saw a host file outside the context")
	}
	if got := strings.TrimSpace(readFile(t, filepath.Join(root, "uidmap"))); got != strconv.Itoa(buildUIDBase) {
		t.Errorf("RUN steps' root is host uid %q, want %d", got, buildUIDBase)
	}
	// A seccomp filter (buildah's default profile), and capabilities
	// only in the build's user namespace (checked above).
	if got := readFile(t, filepath.Join(root, "status")); !strings.Contains(got, "Seccomp: 2\n") {
		t.Errorf("RUN steps' /proc/self/status: %q, want a seccomp filter", got)
	}
	if got := strings.TrimSpace(readFile(t, filepath.Join(root, "nproc"))); got != "100" {
		t.Errorf("RUN steps' process limit = %q, want 100 (BuildOptions.Processes)", got)
	}
	checkNoBuildLeftovers(t, c)

	// COPY of a file outside the context fails in the builder.
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM oci-archive:base.tar\nCOPY ../secret /secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(filepath.Dir(dir), "secret"), []byte("host secret"), 0o644)
	if img, err := c.Build(context.Background(), BuildOptions{Context: dir, Timeout: 10 * time.Minute}); err == nil {
		if exists(filepath.Join(img.Rootfs, "secret")) {
			t.Fatal("COPY ../secret copied a file outside the context")
		}
	}
	checkNoBuildLeftovers(t, c)
}

// A stage's symbolic link to / bound into a RUN step (buildah before
// 1.35.1 follows it on the host: CVE-2024-1753) and a URL that ADD would
// fetch once it expands a build variable: both refused before the
// builder runs, so nothing of the host is read, written or fetched.
func TestBuildBindMountSymlinkFromStage(t *testing.T) {
	needBuilder(t)
	host := imagetest.HostFolder(t)
	dir := buildContext(t, fmt.Sprintf(`FROM oci-archive:evil.tar AS s
FROM oci-archive:base.tar
RUN --mount=type=bind,from=s,source=/hostroot,target=/h,rw bash -c 'read -r l < /h%[1]s/secret; echo "$l" > /leak; echo written > /h%[1]s/written'
`, host))
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "hostroot", Typeflag: tar.TypeSymlink, Linkname: "/", Mode: 0o777}); err != nil {
		t.Fatal(err)
	}
	tw.Close()
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	evil, err := mutate.AppendLayers(shellImage(t), l)
	if err != nil {
		t.Fatal(err)
	}
	tarDir(t, writeLayout(t, evil), filepath.Join(dir, "evil.tar"))
	c := newCache(t)
	var progress syncBuffer
	c.Progress = &progress
	img, err := c.Build(context.Background(), BuildOptions{Context: dir, Timeout: 5 * time.Minute})
	if img != nil && exists(filepath.Join(img.Rootfs, "leak")) {
		t.Errorf("a RUN step read a host file: %q", readFile(t, filepath.Join(img.Rootfs, "leak")))
	}
	if exists(filepath.Join(host, "written")) {
		t.Error("a RUN step wrote a host file")
	}
	wantKind(t, err, errdefs.Denied, "CVE-2024-1753")
	checkNoBuildLeftovers(t, c)
}

func TestBuildAddURLThroughVariable(t *testing.T) {
	needBuilder(t)
	port, conns := imagetest.CountingServer(t, "LOOPBACK-ONLY-SERVICE-DATA\n")
	dir := buildContext(t, fmt.Sprintf("FROM oci-archive:base.tar\nARG U=http://127.0.0.1:%d/internal\nADD $U /fetched\n", port))
	c := newCache(t)
	var progress syncBuffer
	c.Progress = &progress
	img, err := c.Build(context.Background(), BuildOptions{Context: dir, Timeout: 5 * time.Minute})
	if n := conns.Load(); n > 0 || (img != nil && exists(filepath.Join(img.Rootfs, "fetched"))) {
		t.Errorf("the build fetched a loopback URL through ADD $U (%d connections)", n)
	}
	wantKind(t, err, errdefs.Denied, "build variable")
	checkNoBuildLeftovers(t, c)
}

// TestBuildRunsInItsOwnNetworkNamespace: the builder is started in a
// network namespace of its own even without a grant, so whatever it would
// fetch itself (an ADD URL checkDockerfile missed) finds only loopback.
// The builder here is a script that records its namespace and fails.
func TestBuildRunsInItsOwnNetworkNamespace(t *testing.T) {
	if !buildsSupported || os.Geteuid() != 0 {
		t.Skip("builds run on Linux, as root")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "netns")
	script := filepath.Join(dir, "buildah")
	writeFile(t, script, fmt.Sprintf("#!/bin/sh\ncase \" $* \" in *\" bud \"*) readlink /proc/self/ns/net > %s;; esac\nexit 1\n", out))
	if err := os.Chmod(script, 0o755); err != nil {
		t.Fatal(err)
	}
	ctxDir := filepath.Join(dir, "ctx")
	os.Mkdir(ctxDir, 0o755)
	writeFile(t, filepath.Join(ctxDir, "Dockerfile"), "FROM scratch\n")
	c := newCache(t)
	b := Builder{Name: "buildah", Path: script, Usable: true, Runtime: "/bin/true"}
	_, err := c.Build(context.Background(), BuildOptions{Context: ctxDir, Builder: b})
	wantKind(t, err, errdefs.Invalid, "failed")
	// This thread's namespace, not /proc/self's: /proc/self names the
	// process's first thread, which a locked goroutine that entered a new
	// namespace may have left there (Go parks that thread rather than
	// ending it).
	mine, err := os.Readlink("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	got := strings.TrimSpace(readFile(t, out))
	if got == "" || got == mine {
		t.Errorf("the builder ran in network namespace %q, the host's is %q", got, mine)
	}
	checkNoBuildLeftovers(t, c)
}

func TestBuildTimeoutKillsTheBuild(t *testing.T) {
	needBuilder(t)
	// The sleep's second argument marks this test's process.
	token := fmt.Sprintf("0.%09d", time.Now().UnixNano()%1e9)
	dir := buildContext(t, "FROM oci-archive:base.tar\nRUN sleep 600 "+token+"\n")
	c := newCache(t)
	var progress syncBuffer
	c.Progress = &progress
	// While the step runs, runc's state is in the build's folder, where
	// cleanup finds what outlives the builder.
	var seen atomic.Bool
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			if m, _ := filepath.Glob(filepath.Join(c.Dir, ".build-*", "runc", "*", "state.json")); len(m) > 0 {
				seen.Store(true)
			}
		}
	}()
	_, err := c.Build(context.Background(), BuildOptions{Context: dir, Timeout: 30 * time.Second})
	close(stop)
	wantKind(t, err, errdefs.Timeout, "did not finish in time")
	if !seen.Load() {
		t.Error("runc's state was never in the build folder (--runtime-flag root)")
	}
	checkNoBuildLeftovers(t, c)
	// Nothing of the build runs on.
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(token)) {
			t.Errorf("%s still runs: %q", p, b)
		}
	}
}

// TestBuildRefusedBeforeTheBuilderRuns names a builder that does not
// exist: each case must be refused before it would be run.
func TestBuildRefusedBeforeTheBuilderRuns(t *testing.T) {
	dir := t.TempDir()
	ctxDir := filepath.Join(dir, "ctx")
	os.Mkdir(ctxDir, 0o755)
	os.WriteFile(filepath.Join(dir, "outside.tar"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, "Dockerfile.out"), []byte("FROM scratch\n"), 0o644)
	os.Symlink(filepath.Join(dir, "outside.tar"), filepath.Join(ctxDir, "link.tar"))
	os.Symlink(filepath.Join(dir, "Dockerfile.out"), filepath.Join(ctxDir, "Dockerfile.link"))
	os.WriteFile(filepath.Join(ctxDir, "base.tar"), []byte("x"), 0o644)
	c := newCache(t)
	noBuilder := Builder{Name: "buildah", Path: filepath.Join(dir, "no-such-buildah"), Usable: true}
	for _, tc := range []struct {
		name, dockerfile string
		file             string
		kind             errdefs.Kind
		msg              string
	}{
		{name: "remote registry", dockerfile: "FROM registry.example/skills/base:1\nRUN true\n", kind: errdefs.Denied, msg: "loopback"},
		{name: "docker hub short name", dockerfile: "FROM python:3.12\n", kind: errdefs.Denied, msg: "index.docker.io"},
		{name: "platform flag then remote", dockerfile: "FROM --platform=linux/amd64 registry.example/x AS a\n", kind: errdefs.Denied, msg: "loopback"},
		{name: "second stage remote", dockerfile: "FROM oci-archive:base.tar AS a\nFROM \\\n  registry.example/x\n", kind: errdefs.Denied, msg: "loopback"},
		{name: "variable", dockerfile: "ARG BASE=registry.example/x\nFROM $BASE\n", kind: errdefs.Invalid, msg: "variable"},
		{name: "archive outside the context", dockerfile: "FROM oci-archive:../outside.tar\n", kind: errdefs.Invalid, msg: "inside"},
		{name: "absolute archive outside", dockerfile: "FROM oci-archive:" + filepath.Join(dir, "outside.tar") + "\n", kind: errdefs.Denied, msg: "outside the context"},
		{name: "link out of the context", dockerfile: "FROM oci-archive:link.tar\n", kind: errdefs.Denied, msg: "outside the context"},
		{name: "copy from remote", dockerfile: "FROM scratch\nCOPY --from=registry.example/x /a /a\n", kind: errdefs.Denied, msg: "loopback"},
		{name: "mount from remote", dockerfile: "FROM scratch\nRUN --mount=type=bind,from=registry.example/x,target=/x true\n", kind: errdefs.Denied, msg: "CVE-2024-1753"},
		{name: "add url", dockerfile: "FROM scratch\nADD https://example.com/x /x\n", kind: errdefs.Denied, msg: "downloads nothing"},
		{name: "run network", dockerfile: "FROM scratch\nRUN --network=host true\n", kind: errdefs.Denied, msg: "no network"},
		{name: "run insecure", dockerfile: "FROM scratch\nRUN --security=insecure true\n", kind: errdefs.Denied, msg: "insecure"},
		{name: "onbuild", dockerfile: "FROM scratch\nONBUILD ADD http://example.com/x /x\n", kind: errdefs.Denied, msg: "downloads nothing"},
		{name: "add url in a variable", dockerfile: "FROM scratch\nARG U=http://127.0.0.1:1/x\nADD $U /x\n", kind: errdefs.Denied, msg: "build variable"},
		{name: "add url in braces, json", dockerfile: "FROM scratch\nENV H=127.0.0.1:1\nADD [\"http://${H}/x\", \"/x\"]\n", kind: errdefs.Denied, msg: "build variable"},
		{name: "add scheme in a variable", dockerfile: "FROM scratch\nARG S=http\nADD $S://127.0.0.1:1/x /x\n", kind: errdefs.Denied, msg: "build variable"},
		{name: "add url escaped", dockerfile: "FROM scratch\nADD http:\\/\\/127.0.0.1:1/x /x\n", kind: errdefs.Denied, msg: "escape"},
		{name: "add url json unicode escape", dockerfile: "FROM scratch\nADD [\"http\\u003a//127.0.0.1:1/x\", \"/x\"]\n", kind: errdefs.Denied, msg: "escape"},
		{name: "add url quoted", dockerfile: "FROM scratch\nADD \"http:\"//127.0.0.1:1/x /x\n", kind: errdefs.Denied, msg: "downloads nothing"},
		{name: "add url backtick escape", dockerfile: "# escape=`\nFROM scratch\nADD http:`/`/127.0.0.1:1/x /x\n", kind: errdefs.Denied, msg: "escape"},
		{name: "mount bind from stage", dockerfile: "FROM oci-archive:base.tar AS s\nFROM scratch\nRUN --mount=type=bind,from=s,source=/hostroot,target=/h,rw true\n", kind: errdefs.Denied, msg: "CVE-2024-1753"},
		{name: "mount bind from context", dockerfile: "FROM scratch\nRUN --mount=type=bind,source=x,target=/h true\n", kind: errdefs.Denied, msg: "CVE-2024-1753"},
		{name: "mount without type", dockerfile: "FROM scratch\nRUN --mount=source=x,target=/h true\n", kind: errdefs.Denied, msg: "type=tmpfs or type=cache"},
		{name: "mount type twice", dockerfile: "FROM scratch\nRUN --mount=type=tmpfs,type=bind,source=x,target=/h true\n", kind: errdefs.Denied, msg: "twice"},
		{name: "mount type in a variable", dockerfile: "FROM scratch\nARG T=bind\nRUN --mount=type=$T,source=x,target=/h true\n", kind: errdefs.Denied, msg: "type=tmpfs or type=cache"},
		{name: "mount type quoted", dockerfile: "FROM scratch\nRUN --mount=\"type=bind,source=x,target=/h\" true\n", kind: errdefs.Denied, msg: "type=tmpfs or type=cache"},
		{name: "mount flag in capitals", dockerfile: "FROM scratch\nRUN --MOUNT=type=bind,source=x,target=/h true\n", kind: errdefs.Denied, msg: "CVE-2024-1753"},
		{name: "mount secret", dockerfile: "FROM scratch\nRUN --mount=type=secret,id=x true\n", kind: errdefs.Denied, msg: "type=tmpfs or type=cache"},
		{name: "mount cache from stage", dockerfile: "FROM oci-archive:base.tar AS s\nFROM scratch\nRUN --mount=type=cache,from=s,source=/x,target=/c true\n", kind: errdefs.Denied, msg: "from="},
		{name: "mount cache with source", dockerfile: "FROM scratch\nRUN --mount=type=cache,source=../../..,target=/c true\n", kind: errdefs.Denied, msg: "source="},
		{name: "mount cache with id", dockerfile: "FROM scratch\nRUN --mount=type=cache,id=../../..,target=/c true\n", kind: errdefs.Denied, msg: "id="},
		{name: "onbuild mount", dockerfile: "FROM scratch\nONBUILD RUN --mount=type=bind,target=/h true\n", kind: errdefs.Denied, msg: "CVE-2024-1753"},
		{name: "backtick escape", dockerfile: "# escape=`\nFROM `\n registry.example/x\n", kind: errdefs.Denied, msg: "loopback"},
		{name: "no from", dockerfile: "RUN true\n", kind: errdefs.Invalid, msg: "no FROM"},
		{name: "dockerfile outside", file: "../Dockerfile.out", kind: errdefs.Denied, msg: "outside the context"},
		{name: "dockerfile linked outside", file: "Dockerfile.link", kind: errdefs.Denied, msg: "outside the context"},
		{name: "dockerfile absolute outside", file: filepath.Join(dir, "Dockerfile.out"), kind: errdefs.Denied, msg: "outside the context"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := tc.file
			if file == "" {
				file = "Dockerfile"
				os.WriteFile(filepath.Join(ctxDir, file), []byte(tc.dockerfile), 0o644)
			}
			_, err := c.Build(context.Background(), BuildOptions{Context: ctxDir, Dockerfile: file, Builder: noBuilder})
			wantKind(t, err, tc.kind, tc.msg)
		})
	}
	// The context's links out of it (an operator's --context is not a
	// bundle, whose links are checked when it is read).
	os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM scratch\n"), 0o644)
	os.Remove(filepath.Join(ctxDir, "Dockerfile.link"))
	for _, link := range []struct{ name, target string }{
		{"link.tar", filepath.Join(dir, "outside.tar")},
		{"up", "sub/../.."},
		{"sub/back", "../../outside.tar"},
	} {
		os.MkdirAll(filepath.Join(ctxDir, "sub"), 0o755)
		os.Remove(filepath.Join(ctxDir, link.name))
		os.Symlink(link.target, filepath.Join(ctxDir, link.name))
		_, err := c.Build(context.Background(), BuildOptions{Context: ctxDir, Builder: noBuilder})
		wantKind(t, err, errdefs.Denied, "symbolic link "+link.name)
		os.Remove(filepath.Join(ctxDir, link.name))
	}
	// Links that stay inside are fine.
	os.Symlink("base.tar", filepath.Join(ctxDir, "inside.tar"))
	os.Symlink("../base.tar", filepath.Join(ctxDir, "sub", "up.tar"))
	os.Symlink("no-such-file", filepath.Join(ctxDir, "dangling"))

	// What is allowed gets as far as the (missing) builder.
	for _, df := range []string{
		"FROM scratch\n",
		"FROM oci-archive:base.tar AS a\nFROM a\nCOPY --from=a /x /x\nCOPY --from=0 /y /y\n",
		"FROM 127.0.0.1:5000/base:1\nRUN --network=none true\n",
		"FROM localhost:5000/base@sha256:" + strings.Repeat("a", 64) + "\n",
		"FROM scratch\nRUN --mount=type=tmpfs,target=/t,tmpfs-size=1m --mount=type=cache,target=/c,sharing=locked,mode=0755,uid=0,gid=0 true\n",
		"FROM scratch\nRUN --mount=type=cache,dst=/c,ro --mount=type=tmpfs,destination=/t,size=1m true\n",
		"FROM scratch\nADD file.tar /x/\nCOPY $SRC /y\n",
	} {
		os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte(df), 0o644)
		_, err := c.Build(context.Background(), BuildOptions{Context: ctxDir, Builder: noBuilder})
		if errdefs.KindOf(err) != errdefs.Unsupported && errdefs.KindOf(err) != errdefs.Unavailable {
			t.Errorf("%q: %v; want it to reach the builder", df, err)
		}
	}
	checkNoBuildLeftovers(t, c)
}

// A build whose process died leaves its folder; Prune removes it (and
// its TMPDIR) once its lock is free, never while the build runs.
func TestPruneRemovesDeadBuilds(t *testing.T) {
	c := newCache(t)
	mk := func() (work, tmp string) {
		os.MkdirAll(c.Dir, 0o755)
		work, err := os.MkdirTemp(c.Dir, ".build-")
		if err != nil {
			t.Fatal(err)
		}
		tmp, err = os.MkdirTemp("", "skillbox-build-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(tmp) })
		os.WriteFile(filepath.Join(work, "tmpdir"), []byte(tmp), 0o600)
		os.Mkdir(filepath.Join(work, "root"), 0o700)
		return work, tmp
	}
	dead, deadTmp := mk()
	live, liveTmp := mk()
	unlock, err := filelock.Lock(filepath.Join(live, "lock"), "test build")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if _, err := c.Prune(nil); err != nil {
		t.Fatal(err)
	}
	if exists(dead) || exists(deadTmp) {
		t.Error("prune left a dead build's folders")
	}
	if !exists(live) || !exists(liveTmp) {
		t.Error("prune removed a running build's folders")
	}
}

func TestNoBuilderIsUnavailable(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := DetectBuilder(context.Background())
	wantKind(t, err, errdefs.Unavailable, "apt-get install buildah runc")
	if !buildsSupported {
		return
	}
	c := newCache(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\n"), 0o644)
	_, err = c.Build(context.Background(), BuildOptions{Context: dir})
	wantKind(t, err, errdefs.Unavailable, "install buildah")
}

// A failed build's error quotes the builder's last lines, each cut short:
// a RUN step printing lines of a MiB before failing made an error of ~20
// MiB, which every call of the skill that tried to build it (serve
// --build-images) carried to its caller, the server's log and the audit
// log.
func TestBuildFailureMessageIsBounded(t *testing.T) {
	needBuilder(t)
	dir := buildContext(t, `FROM oci-archive:base.tar
RUN bash -c 'l=x; for i in {1..19}; do l=$l$l; done; for i in {1..25}; do echo "$l"; done; exit 3'
`)
	c := newCache(t)
	_, err := c.Build(context.Background(), BuildOptions{Context: dir, Timeout: 10 * time.Minute, Processes: 100, Memory: 256 << 20})
	if err == nil {
		t.Fatal("the build did not fail")
	}
	if n := len(err.Error()); n > 64<<10 {
		t.Errorf("the build's error is %d bytes long, want at most 64 KiB", n)
	}
	if !strings.Contains(err.Error(), "xxxx") {
		t.Errorf("the build's error quotes none of its output: %.300s", err)
	}
	checkNoBuildLeftovers(t, c)
}

// countingWriter counts what is written to it.
type countingWriter struct{ n atomic.Int64 }

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n.Add(int64(len(p)))
	return len(p), nil
}

// A build's progress shows at most maxProgress bytes of the builder's
// output, then says how much more there was: a RUN step writing without
// end (yes) sent it all to the progress — under serve --build-images, the
// server's standard error, at every call that tried the build again.
func TestBuildProgressIsBounded(t *testing.T) {
	needBuilder(t)
	dir := buildContext(t, `FROM oci-archive:base.tar
RUN bash -c 'l=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy; for i in {1..100000}; do echo "$l"; done'
`)
	c := newCache(t)
	var progress countingWriter
	c.Progress = &progress
	if _, err := c.Build(context.Background(), BuildOptions{Context: dir, Timeout: 10 * time.Minute, Processes: 100, Memory: 256 << 20}); err != nil {
		t.Fatalf("build: %v", err)
	}
	if n := progress.n.Load(); n > 2<<20 {
		t.Errorf("the build's progress had %d bytes: a RUN step's 8 MB of output went through whole", n)
	}
	checkNoBuildLeftovers(t, c)
}
