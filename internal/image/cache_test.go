package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/skillbox-dev/skillbox/errdefs"
)

func newCache(t *testing.T) *Cache {
	t.Helper()
	// Never the host's docker config.
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	return &Cache{Dir: filepath.Join(t.TempDir(), "images"), Keychain: authn.NewMultiKeychain()}
}

func digestOf(t *testing.T, img v1.Image) Digest {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return Digest(d.String())
}

// writeLayout writes an OCI layout holding img and returns its folder.
func writeLayout(t *testing.T, imgs ...v1.Image) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range imgs {
		if err := p.AppendImage(img); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// tarDir writes dir as a tar file (an OCI archive when dir is a layout).
func tarDir(t *testing.T, dir, file string) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.AddFS(os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func pythonish(t *testing.T, marker string) v1.Image {
	t.Helper()
	return imageOf(t, layer(t, file("usr/bin/python3", "#!"+marker), symlink("bin", "usr/bin")), layer(t, file("app/marker", marker)))
}

func TestParseRef(t *testing.T) {
	base := "/bundles/pdf"
	for _, tc := range []struct {
		in, base string
		want     Ref
		err      string
	}{
		{in: "oci-archive:image.tar", base: base, want: Ref{OCIArchive, "/bundles/pdf/image.tar"}},
		{in: "docker-archive:./sub/img.tar", base: base, want: Ref{DockerArchive, "/bundles/pdf/sub/img.tar"}},
		{in: "oci:layout", base: base, want: Ref{OCILayout, "/bundles/pdf/layout"}},
		{in: "oci:/abs/layout", want: Ref{OCILayout, "/abs/layout"}},
		{in: "oci:../other", base: base, err: "inside"},
		{in: "oci-archive:a/../../x.tar", base: base, err: "inside"},
		{in: "oci:layout", err: "relative"},
		{in: "oci-archive:", base: base, err: "PATH"},
		{in: "python:3.12", want: Ref{Registry, "index.docker.io/library/python:3.12"}},
		{in: "127.0.0.1:5000/skills/pdf@sha256:" + strings.Repeat("a", 64), want: Ref{Registry, "127.0.0.1:5000/skills/pdf@sha256:" + strings.Repeat("a", 64)}},
		{in: "Not A Ref!", err: "registry reference"},
		{in: "", err: "empty"},
	} {
		got, err := ParseRef(tc.in, tc.base)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || errdefs.KindOf(err) != errdefs.Invalid {
				t.Errorf("ParseRef(%q) = %v, %v; want invalid containing %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseRef(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
		if back, err := ParseRef(got.String(), ""); err != nil || back != got {
			t.Errorf("ParseRef(%q.String()) = %v, %v", tc.in, back, err)
		}
	}
}

func TestPullOCILayoutArchiveAndDockerArchive(t *testing.T) {
	img := pythonish(t, "v1")
	want := digestOf(t, img)
	lay := writeLayout(t, img)
	dir := t.TempDir()
	tarDir(t, lay, filepath.Join(dir, "image.tar"))
	if err := tarball.WriteToFile(filepath.Join(dir, "docker.tar"), name.MustParseReference("skills/pdf:1"), img); err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ref  string
		want Digest
	}{
		{"oci:" + lay, want},
		{"oci-archive:image.tar", want},
		{"docker-archive:docker.tar", Digest(cfg.String())},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			c := newCache(t)
			var progress bytes.Buffer
			c.Progress = &progress
			ref, err := ParseRef(tc.ref, dir)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.Pull(context.Background(), ref)
			if err != nil {
				t.Fatal(err)
			}
			if got.Digest != tc.want || got.Platform != HostPlatform() || got.Ref != ref {
				t.Errorf("pulled %+v, want digest %s", got.Pinned, tc.want)
			}
			if readFile(t, filepath.Join(got.Rootfs, "app/marker")) != "v1" || readFile(t, filepath.Join(got.Rootfs, "bin/python3")) != "#!v1" {
				t.Error("rootfs content wrong")
			}
			if got.Config.WorkingDir != "/app" || got.Config.User != "1000" || len(got.Config.Env) != 2 || got.Created.IsZero() {
				t.Errorf("config %+v created %v", got.Config, got.Created)
			}
			if !strings.Contains(progress.String(), "layer 2/2") {
				t.Errorf("progress: %q", progress.String())
			}
			again, err := c.Ensure(context.Background(), got.Pinned)
			if err != nil || again.Dir != got.Dir {
				t.Fatalf("Ensure(pinned) = %v, %v", again, err)
			}
			list, err := c.List()
			if err != nil || len(list) != 1 || list[0].Digest != tc.want {
				t.Fatalf("List = %v, %v", list, err)
			}
		})
	}
}

func TestPinnedArchiveThatChangedIsDenied(t *testing.T) {
	dir := t.TempDir()
	arch := filepath.Join(dir, "image.tar")
	tarDir(t, writeLayout(t, pythonish(t, "v1")), arch)
	c := newCache(t)
	ref, _ := ParseRef("oci-archive:image.tar", dir)
	p, err := c.Resolve(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.Dir); err == nil {
		if list, _ := c.List(); len(list) != 0 {
			t.Fatal("Resolve unpacked something")
		}
	}
	tarDir(t, writeLayout(t, pythonish(t, "v2")), arch)
	_, err = c.Ensure(context.Background(), p)
	wantKind(t, err, errdefs.Denied, "not the pinned")
}

func TestIndexPicksThisPlatform(t *testing.T) {
	mine := pythonish(t, "mine")
	other := imageOf(t, layer(t, file("app/marker", "other")))
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: other, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "s390x"}}},
		mutate.IndexAddendum{Add: mine, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: hostArch()}}},
		mutate.IndexAddendum{Add: other, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "windows", Architecture: hostArch()}}},
	)
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendIndex(idx); err != nil {
		t.Fatal(err)
	}
	c := newCache(t)
	got, err := c.Pull(context.Background(), Ref{OCILayout, dir})
	if err != nil {
		t.Fatal(err)
	}
	idxDigest, _ := idx.Digest()
	if got.Digest != digestOf(t, mine) || got.Index != Digest(idxDigest.String()) {
		t.Fatalf("pinned %+v, want %s from index %s", got.Pinned, digestOf(t, mine), idxDigest)
	}

	foreign := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: other, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "s390x"}}})
	if hostArch() == "s390x" {
		t.Skip("this host is s390x")
	}
	dir2 := filepath.Join(t.TempDir(), "layout")
	p2, _ := layout.Write(dir2, empty.Index)
	if err := p2.AppendIndex(foreign); err != nil {
		t.Fatal(err)
	}
	_, err = c.Resolve(context.Background(), Ref{OCILayout, dir2})
	wantKind(t, err, errdefs.Unsupported, "linux/s390x")
}

func TestTamperedLayoutBlobIsRefused(t *testing.T) {
	img := pythonish(t, "v1")
	lay := writeLayout(t, img)
	m, _ := img.Manifest()
	// Swap the config blob for another file under the same name.
	cfg := filepath.Join(lay, "blobs", "sha256", m.Config.Digest.Hex)
	os.Chmod(cfg, 0o644)
	if err := os.WriteFile(cfg, []byte(`{"architecture":"`+hostArch()+`","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := newCache(t).Pull(context.Background(), Ref{OCILayout, lay})
	wantKind(t, err, errdefs.Invalid, "config does not match")
}

func TestDeclaredSizeOverCapIsRefusedBeforeReading(t *testing.T) {
	img, err := random.Image(64<<10, 2)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", hostArch()
	img, _ = mutate.ConfigFile(img, cf)
	c := newCache(t)
	c.Limits = Limits{MaxBytes: 16 << 10}
	_, err = c.Pull(context.Background(), Ref{OCILayout, writeLayout(t, img)})
	wantKind(t, err, errdefs.Limit, "declare")
}

func TestOCIArchiveWithHostileEntriesIsRefused(t *testing.T) {
	dir := t.TempDir()
	for name, e := range map[string]ent{
		"dotdot.tar":  file("../../"+randName(t), "x"),
		"link.tar":    symlink("index.json", "/etc/passwd"),
		"device.tar":  {name: "blobs/null", typ: tar.TypeChar, mode: 0o666},
		"toobig.tar":  {name: "blobs/big", body: "x", typ: tar.TypeReg, mode: 0o644, size: 1 << 40},
		"garbage.tar": {name: "index.json", body: "{", typ: tar.TypeReg, mode: 0o644},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), tarBytes(t, e), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := newCache(t).Pull(context.Background(), Ref{OCIArchive, filepath.Join(dir, name)})
		if k := errdefs.KindOf(err); k != errdefs.Invalid && k != errdefs.Limit {
			t.Errorf("%s: %v (kind %s), want invalid or limit", name, err, k)
		}
	}
}

func TestMissingSourcesAreNotFound(t *testing.T) {
	c := newCache(t)
	for _, r := range []Ref{{OCILayout, "/nonexistent/layout"}, {OCIArchive, "/nonexistent/a.tar"}, {DockerArchive, "/nonexistent/d.tar"}} {
		_, err := c.Resolve(context.Background(), r)
		wantKind(t, err, errdefs.NotFound, "")
	}
}

// loopbackRegistry serves go-containerregistry's in-memory registry on
// 127.0.0.1 and returns its host:port.
func loopbackRegistry(t *testing.T) string {
	t.Helper()
	s := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

func push(t *testing.T, ref string, img v1.Image) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
}

func TestRegistryTagIsPinnedAndMoves(t *testing.T) {
	host := loopbackRegistry(t)
	v1img, v2img := pythonish(t, "v1"), pythonish(t, "v2")
	push(t, host+"/skills/pdf:latest", v1img)
	c := newCache(t)
	var progress bytes.Buffer
	c.Progress = &progress
	ref, err := ParseRef(host+"/skills/pdf:latest", "")
	if err != nil {
		t.Fatal(err)
	}
	p1, err := c.Resolve(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if p1.Digest != digestOf(t, v1img) || p1.String() != host+"/skills/pdf@"+string(p1.Digest) {
		t.Fatalf("pinned %+v (%s)", p1, p1)
	}
	push(t, host+"/skills/pdf:latest", v2img) // the tag moves
	p2, err := c.Resolve(context.Background(), ref)
	if err != nil || p2.Digest != digestOf(t, v2img) {
		t.Fatalf("after the move: %+v, %v", p2, err)
	}
	// The old pin still gets the old image, by digest.
	img, err := c.Ensure(context.Background(), p1)
	if err != nil {
		t.Fatal(err)
	}
	if readFile(t, filepath.Join(img.Rootfs, "app/marker")) != "v1" || img.Ref != ref {
		t.Fatalf("Ensure(old pin) unpacked %+v", img.Pinned)
	}
	if !strings.Contains(progress.String(), "layer 1/2") {
		t.Errorf("progress: %q", progress.String())
	}

	// A multi-platform tag pins the image for this platform and records
	// the index.
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: v2img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: hostArch()}}})
	r, _ := name.ParseReference(host + "/skills/multi:1")
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatal(err)
	}
	pm, err := c.Resolve(context.Background(), Ref{Registry, r.Name()})
	idxDigest, _ := idx.Digest()
	if err != nil || pm.Digest != digestOf(t, v2img) || pm.Index != Digest(idxDigest.String()) {
		t.Fatalf("multi-platform: %+v, %v", pm, err)
	}

	_, err = c.Resolve(context.Background(), Ref{Registry, host + "/skills/missing:1"})
	wantKind(t, err, errdefs.NotFound, "")
}

func TestPlainHTTPOnlyOnLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost:5000": true, "127.0.0.1:5000": true, "127.9.9.9": true, "[::1]:5000": true, "LOCALHOST": true,
		"registry.example": false, "10.0.0.1:5000": false, "192.168.1.10": false, "printer.local:5000": false,
		"localhost.example.com": false, "127.0.0.1.nip.io": false, "[::ffff:10.0.0.1]:80": false,
	} {
		if got := PlainHTTPAllowed(host); got != want {
			t.Errorf("PlainHTTPAllowed(%q) = %v, want %v", host, got, want)
		}
	}
}

// recorder fails every request and records what it was asked.
type recorder struct {
	mu   sync.Mutex
	reqs []string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req.URL.Scheme+"://"+req.URL.Host)
	r.mu.Unlock()
	return nil, errors.New("no network in tests")
}

func TestPlainHTTPRefusedForRemoteNames(t *testing.T) {
	// go-containerregistry falls back to http for RFC 1918 addresses;
	// the guard must stop that before any connection.
	for _, ref := range []string{"10.0.0.1:5000/skills/pdf:1", "192.168.1.10/skills/pdf:1", "registry.example/skills/pdf:1"} {
		rec := &recorder{}
		c := newCache(t)
		c.Transport = rec
		r, err := ParseRef(ref, "")
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Resolve(context.Background(), r)
		if err == nil {
			t.Fatalf("%s: resolved without a network", ref)
		}
		if strings.Contains(ref, "10.0.0.1") && !strings.Contains(err.Error(), "refusing plain http") {
			t.Errorf("%s: the private-address fallback to http was not refused by the guard: %v", ref, err)
		}
		for _, q := range rec.reqs {
			if strings.HasPrefix(q, "http://") {
				t.Errorf("%s: a plain HTTP request reached the transport: %s", ref, q)
			}
		}
	}
	g := httpGuard{next: &recorder{}}
	req, _ := http.NewRequest("GET", "http://registry.example/v2/", nil)
	_, err := g.RoundTrip(req)
	wantKind(t, err, errdefs.Denied, "loopback")
}

func TestConcurrentPullsUnpackOnce(t *testing.T) {
	img := pythonish(t, "v1")
	lay := writeLayout(t, img)
	c := newCache(t)
	var wg sync.WaitGroup
	dirs := make([]string, 6)
	errs := make([]error, 6)
	for i := range dirs {
		wg.Go(func() {
			got, err := (&Cache{Dir: c.Dir, Keychain: c.Keychain}).Pull(context.Background(), Ref{OCILayout, lay})
			errs[i] = err
			if err == nil {
				dirs[i] = got.Dir
			}
		})
	}
	wg.Wait()
	for i := range dirs {
		if errs[i] != nil || dirs[i] != dirs[0] {
			t.Fatalf("pull %d: %v %q", i, errs[i], dirs[i])
		}
	}
	ents, _ := os.ReadDir(c.Dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("leftover %s", e.Name())
		}
	}
}

func TestPruneSkipsImagesInUse(t *testing.T) {
	c := newCache(t)
	a, err := c.Pull(context.Background(), Ref{OCILayout, writeLayout(t, pythonish(t, "a"))})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Pull(context.Background(), Ref{OCILayout, writeLayout(t, pythonish(t, "b"))})
	if err != nil {
		t.Fatal(err)
	}
	// A leftover of an interrupted unpack of a.
	if err := os.MkdirAll(filepath.Join(c.Dir, ".unpack-"+dirName(a.Digest)+"-123", "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	used, release, err := c.Use(a.Digest)
	if err != nil || used.Dir != a.Dir {
		t.Fatalf("Use: %v %v", used, err)
	}
	res, err := c.Prune(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Removed) != 1 || res.Removed[0].Digest != b.Digest || len(res.InUse) != 1 || res.InUse[0].Digest != a.Digest {
		t.Fatalf("prune while a is in use: %+v", res)
	}
	if exists(b.Dir) || !exists(filepath.Join(a.Rootfs, "app/marker")) {
		t.Fatal("prune removed the wrong image")
	}
	if exists(filepath.Join(c.Dir, ".unpack-"+dirName(a.Digest)+"-123")) {
		t.Error("prune left an interrupted unpack")
	}
	release()
	res, err = c.Prune(nil)
	if err != nil || len(res.Removed) != 1 || len(res.InUse) != 0 || exists(a.Dir) {
		t.Fatalf("prune after release: %+v, %v", res, err)
	}
	_, _, err = c.Use(a.Digest)
	wantKind(t, err, errdefs.NotFound, "not unpacked")
	if list, _ := c.List(); len(list) != 0 {
		t.Fatalf("List after prune: %v", list)
	}
}

func TestReadOnlyTreeIsPrunableUnprivileged(t *testing.T) {
	// Folders keep their owner's rwx whatever the image says, so a
	// non-root skillbox can remove what it unpacked.
	root, _ := mustUnpack(t, layer(t, ent{name: "locked", typ: tar.TypeDir, mode: 0}, ent{name: "locked/f", body: "x", typ: tar.TypeReg, mode: 0}))
	fi, err := os.Stat(filepath.Join(root, "locked"))
	if err != nil || fi.Mode().Perm()&0o700 != 0o700 {
		t.Fatalf("locked: %v %v", fi.Mode(), err)
	}
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
}

func TestEnsureRefusesBadPins(t *testing.T) {
	c := newCache(t)
	for _, p := range []Pinned{{}, {Ref: Ref{OCILayout, "/x"}, Digest: "sha256:abc"}, {Ref: Ref{OCILayout, "/x"}, Digest: Digest("sha256:" + strings.Repeat("A", 64))}} {
		_, err := c.Ensure(context.Background(), p)
		wantKind(t, err, errdefs.Invalid, "")
	}
}

func TestPinnedRecordsAsJSON(t *testing.T) {
	p := Pinned{Ref: Ref{OCIArchive, "/bundles/pdf/image.tar"}, Digest: Digest("sha256:" + strings.Repeat("ab", 32)), Platform: "linux/amd64"}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"ref":"oci-archive:/bundles/pdf/image.tar","digest":"sha256:` + strings.Repeat("ab", 32) + `","platform":"linux/amd64"}`; string(b) != want {
		t.Fatalf("JSON %s, want %s", b, want)
	}
	var back Pinned
	if err := json.Unmarshal(b, &back); err != nil || back != p || back.Validate() != nil {
		t.Fatalf("read back %+v, %v", back, err)
	}
	if err := json.Unmarshal([]byte(`{"ref":"oci:relative","digest":"sha256:00"}`), &back); err == nil {
		t.Fatal("a relative path in a record was accepted")
	}
	if p.String() != "oci-archive:/bundles/pdf/image.tar@sha256:"+strings.Repeat("ab", 32) {
		t.Fatalf("String %s", p)
	}
}

func TestDockerArchiveWithTwoImagesIsInvalid(t *testing.T) {
	f := filepath.Join(t.TempDir(), "two.tar")
	refs := map[name.Reference]v1.Image{name.MustParseReference("a:1"): pythonish(t, "a"), name.MustParseReference("b:1"): pythonish(t, "b")}
	if err := tarball.MultiRefWriteToFile(f, refs); err != nil {
		t.Fatal(err)
	}
	_, err := newCache(t).Resolve(context.Background(), Ref{DockerArchive, f})
	wantKind(t, err, errdefs.Invalid, "one image")
}
