// Package imagetest builds OCI images for tests, offline: an image of
// the host's distribution Python (its binary, libraries and standard
// library at their own paths) written as an OCI layout, with a marker only
// the image has and hostile bits the unpacker must neutralise.
package imagetest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"io/fs"
	"log"
	"maps"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/skillbox-dev/skillbox/internal/pyinterp"
)

// Marker is the content of /image-marker, a file only the image has.
const Marker = "only in the image\n"

// ImageSys is what PythonImage's image holds at
// /sys/kernel/mm/transparent_hugepage/enabled.
const ImageSys = "the image's own\n"

// Python is the interpreter the test image carries: a distribution's
// (its prefix is /usr, so the image holds only its own library folder).
const Python = "/usr/bin/python3.11"

// layerWriter writes host paths into a layer at the same paths.
type layerWriter struct {
	tw   *tar.Writer
	seen map[string]bool
	skip func(string) bool
}

// add writes p: its parent folders and the symbolic links met on the way
// (recreated, then followed), and p itself, a folder with all it holds.
func (w *layerWriter) add(p string, depth int) error {
	if depth > 40 {
		return errors.New("too many links")
	}
	parts := strings.Split(filepath.Clean(p)[1:], "/")
	cur := ""
	for i, c := range parts {
		cur += "/" + c
		fi, err := os.Lstat(cur)
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(cur)
			if err != nil {
				return err
			}
			if err := w.entry(cur, fi, target); err != nil {
				return err
			}
			next := target
			if !filepath.IsAbs(next) {
				next = filepath.Join(filepath.Dir(cur), target)
			}
			return w.add(filepath.Join(append([]string{next}, parts[i+1:]...)...), depth+1)
		}
		if i < len(parts)-1 {
			if err := w.entry(cur, fi, ""); err != nil {
				return err
			}
			continue
		}
		return filepath.WalkDir(cur, func(q string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if w.skip != nil && w.skip(q) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			target := ""
			if fi.Mode()&fs.ModeSymlink != 0 {
				if target, err = os.Readlink(q); err != nil {
					return err
				}
			}
			return w.entry(q, fi, target)
		})
	}
	return nil
}

func (w *layerWriter) entry(p string, fi fs.FileInfo, link string) error {
	if w.seen[p] || !(fi.IsDir() || fi.Mode().IsRegular() || fi.Mode()&fs.ModeSymlink != 0) {
		return nil
	}
	w.seen[p] = true
	h, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return err
	}
	h.Name, h.Uid, h.Gid, h.Uname, h.Gname = strings.TrimPrefix(p, "/"), 0, 0, "root", "root"
	if fi.IsDir() {
		h.Name += "/"
	}
	if err := w.tw.WriteHeader(h); err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteTo(w.tw)
	return err
}

func (w *layerWriter) file(name string, mode int64, body string) error {
	if err := w.tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err := w.tw.Write([]byte(body))
	return err
}

// PythonImage writes an OCI layout at dir holding a one-layer image made
// of the host's Python, what its ELF headers and its extension
// modules need, its standard library, the loader cache, a marker only the
// image has, a file under /sys (ImageSys), and a set-user-id root copy of
// id(1); its config sets PATH,
// a variable of its own and poison (LD_PRELOAD, PYTHONPATH).
func PythonImage(t testing.TB, dir string) {
	t.Helper()
	if _, err := os.Stat(Python); err != nil {
		t.Skipf("no %s on this host to build the test image from", Python)
	}
	id, err := exec.LookPath("id")
	if err != nil {
		t.Skip("no id(1) on this host")
	}
	id, _ = filepath.EvalSymlinks(id)
	lib := "/usr/lib/python3.11"
	paths := []string{Python, "/usr/bin/python3", lib, "/etc/ld.so.cache", id}
	bins := []string{Python, id}
	mods, _ := filepath.Glob(filepath.Join(lib, "lib-dynload", "*.so"))
	paths = withELFDeps(paths, append(bins, mods...)...)
	tarFile := filepath.Join(t.TempDir(), "layer.tar")
	f, err := os.Create(tarFile)
	if err != nil {
		t.Fatal(err)
	}
	w := &layerWriter{tw: tar.NewWriter(f), seen: map[string]bool{}, skip: func(p string) bool {
		for _, s := range []string{"test", "idlelib", "tkinter", "ensurepip", "lib2to3", "turtledemo", "pydoc_data"} {
			if p == filepath.Join(lib, s) {
				return true
			}
		}
		return strings.HasPrefix(p, filepath.Join(lib, "config-"))
	}}
	for _, p := range paths {
		if err := w.add(p, 0); err != nil {
			t.Fatalf("layer: %s: %v", p, err)
		}
	}
	if err := w.file("image-marker", 0o644, Marker); err != nil {
		t.Fatal(err)
	}
	// What an image may carry where a runtime mounts sysfs: never shown.
	if err := w.file("sys/kernel/mm/transparent_hugepage/enabled", 0o644, ImageSys); err != nil {
		t.Fatal(err)
	}
	suid, err := os.ReadFile(id)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.file("usr/local/bin/suid-id", 0o4755, string(suid)); err != nil {
		t.Fatal(err)
	}
	if err := w.tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromFile(tarFile, tarball.WithCompressionLevel(gzip.BestSpeed))
	if err != nil {
		t.Fatal(err)
	}
	img := linuxImage(t, layer, func(c *v1.Config) {
		c.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "IMAGE_VAR=from-the-image",
			"LD_PRELOAD=/nonexistent/poison.so", "PYTHONPATH=/nonexistent", "PYTHONINSPECT=1"}
		c.Entrypoint, c.User, c.WorkingDir = []string{"/bin/false"}, "0", "/root"
	})
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
}

// Digest is the digest of the one image in the layout at dir.
func Digest(dir string) (string, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return "", err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return "", err
	}
	if len(m.Manifests) != 1 {
		return "", errors.New("want one image")
	}
	var d v1.Hash = m.Manifests[0].Digest
	return d.String(), nil
}

// Tiny is a linux image of this architecture with one small file,
// /tiny, holding content: different contents, different digests.
func Tiny(t testing.TB, content string) v1.Image {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "tiny", Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte(content))
	tw.Close()
	b := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return linuxImage(t, layer, nil)
}

// linuxImage is the one-layer linux image of this machine's architecture
// holding layer, its config changed by edit (when not nil).
func linuxImage(t testing.TB, layer v1.Layer, edit func(*v1.Config)) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	if edit != nil {
		edit(&cf.Config)
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return img
}

// Registry serves go-containerregistry's in-memory registry on 127.0.0.1
// until the test ends and returns its host:port.
func Registry(t testing.TB) string {
	t.Helper()
	s := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

// Push writes img to ref (on a loopback Registry) and returns its digest.
func Push(t testing.TB, ref string, img v1.Image) string {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// FromLayout is the one image of the OCI layout at dir.
func FromLayout(dir string) (v1.Image, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	if len(m.Manifests) != 1 {
		return nil, errors.New("want one image")
	}
	return idx.Image(m.Manifests[0].Digest)
}

// withELFDeps returns paths with the libraries each of bins loads and,
// beside each library, the links that resolve to it (the loader finds a
// library by its soname, a link beside it), sorted and without repeats.
func withELFDeps(paths []string, bins ...string) []string {
	for _, b := range bins {
		for _, dep := range pyinterp.ELFDeps(b) {
			paths = append(paths, dep)
			ents, _ := os.ReadDir(filepath.Dir(dep))
			for _, e := range ents {
				l := filepath.Join(filepath.Dir(dep), e.Name())
				if real, err := filepath.EvalSymlinks(l); err == nil && e.Type()&fs.ModeSymlink != 0 && real == dep {
					paths = append(paths, l)
				}
			}
		}
	}
	slices.Sort(paths)
	return slices.Compact(paths)
}

// ShellImage writes an OCI layout at dir holding a one-layer image made of
// the host's /bin/sh (what its ELF headers need, and the links on the way)
// and programs, each an executable file at its path (absolute, inside the
// image) with the given content: a script with "#!/bin/sh" stands in
// for a program the test does not have, such as an old Python. Its config
// sets PATH.
func ShellImage(t testing.TB, dir string, programs map[string]string) {
	t.Helper()
	sh, err := filepath.EvalSymlinks("/bin/sh")
	if err != nil {
		t.Skipf("no /bin/sh on this host: %v", err)
	}
	paths := withELFDeps([]string{"/bin/sh", sh}, sh)
	tarFile := filepath.Join(t.TempDir(), "layer.tar")
	f, err := os.Create(tarFile)
	if err != nil {
		t.Fatal(err)
	}
	w := &layerWriter{tw: tar.NewWriter(f), seen: map[string]bool{}}
	for _, p := range paths {
		if err := w.add(p, 0); err != nil {
			t.Fatalf("layer: %s: %v", p, err)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(programs)) {
		if err := w.file(strings.TrimPrefix(p, "/"), 0o755, programs[p]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromFile(tarFile, tarball.WithCompressionLevel(gzip.BestSpeed))
	if err != nil {
		t.Fatal(err)
	}
	img := linuxImage(t, layer, func(c *v1.Config) {
		c.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin"}
	})
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
}
