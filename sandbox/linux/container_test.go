//go:build linux

package linux

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/jail"
	"github.com/skillbox-dev/skillbox/internal/pyinterp"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// imagePython is the interpreter the test image carries: a distribution's
// (its prefix is /usr, so the image holds only its own library folder).
const imagePython = "/usr/bin/python3.11"

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

// pythonImage writes an OCI layout at dir holding a one-layer image made
// of the host's imagePython, what its ELF headers and its extension
// modules need, its standard library, the loader cache, a marker only the
// image has, and a set-user-id root copy of id(1); its config sets PATH,
// a variable of its own and poison (LD_PRELOAD, PYTHONPATH).
func pythonImage(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(imagePython); err != nil {
		t.Skipf("no %s on this host to build the test image from", imagePython)
	}
	id, err := exec.LookPath("id")
	if err != nil {
		t.Skip("no id(1) on this host")
	}
	id, _ = filepath.EvalSymlinks(id)
	lib := "/usr/lib/python3.11"
	paths := []string{imagePython, "/usr/bin/python3", lib, "/etc/ld.so.cache", id}
	bins := []string{imagePython, id}
	mods, _ := filepath.Glob(filepath.Join(lib, "lib-dynload", "*.so"))
	for _, b := range append(bins, mods...) {
		for _, dep := range pyinterp.ELFDeps(b) {
			paths = append(paths, dep)
			// The loader finds a library by its soname, a link beside it.
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
	paths = slices.Compact(paths)
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
	if err := w.file("image-marker", 0o644, "only in the image\n"); err != nil {
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
	cf.Config.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "IMAGE_VAR=from-the-image",
		"LD_PRELOAD=/nonexistent/poison.so", "PYTHONPATH=/nonexistent", "PYTHONINSPECT=1"}
	cf.Config.Entrypoint, cf.Config.User, cf.Config.WorkingDir = []string{"/bin/false"}, "0", "/root"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
}

// TestContainer runs skills with execution: container in an image built
// here (no network): the jail's root is the image's, nothing of the
// host's / shows, the image's python runs the skill, its ENV is honoured
// but not its poison, set-user-id bits give nothing, an untrusted image
// gets a fresh interpreter per call and a trusted one a zygote.
func TestContainer(t *testing.T) {
	requireRoot(t)
	if err := jail.Usable(); err != nil {
		t.Skipf("host cannot build jails: %v", err)
	}
	canary := filepath.Join(t.TempDir(), "host-canary")
	if err := os.WriteFile(canary, []byte("host"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := bundle(t, `        import subprocess, stat
        st = os.stat("/usr/local/bin/suid-id")
        seen = {p: os.path.exists(p) for p in ["/image-marker", "/work", "/root", "/home", "/var", "/tmp", "/etc/passwd", `+"\""+canary+"\""+`, "/skill/skill.py"]}
        return {"executable": sys.executable, "prefix": sys.prefix, "pid": os.getpid(), "uid": os.getuid(),
                "marker": open("/image-marker").read(), "seen": seen, "env": dict(os.environ),
                "usr_bin": sorted(os.listdir("/usr/bin")),
                "suid_bit": bool(st.st_mode & stat.S_ISUID),
                "suid_uid": subprocess.run(["/usr/local/bin/suid-id", "-u"], capture_output=True, text=True).stdout.strip()}`)
	pythonImage(t, filepath.Join(dir, "image"))
	cache := filepath.Join(t.TempDir(), "images")
	spec := func(c sandbox.Container) sandbox.Spec {
		return sandbox.Spec{BundleDir: dir, Container: &c}
	}

	t.Run("untrusted", func(t *testing.T) {
		sb := openBox(t, Options{ImageCache: cache}, spec(sandbox.Container{Image: "oci:image"}))
		for i := range 2 {
			res, err := call(t, sb, map[string]any{})
			if err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
			v := value(t, res)
			if v["executable"] != "/usr/bin/python3" || v["prefix"] != "/usr" || v["marker"] != "only in the image\n" {
				t.Errorf("not the image's python or root: executable %v, prefix %v, marker %q", v["executable"], v["prefix"], v["marker"])
			}
			seen := v["seen"].(map[string]any)
			for p, there := range seen {
				want := p == "/image-marker" || p == "/skill/skill.py"
				if there != want {
					t.Errorf("os.path.exists(%s) = %v in the image's jail, want %v", p, there, want)
				}
			}
			if v["pid"] != float64(1) {
				t.Errorf("call %d ran as pid %v: an untrusted image's call must be pid 1 of a fresh jail (cold), not a zygote's fork", i, v["pid"])
			}
			if v["uid"] != float64(jail.ID) || v["suid_uid"] != "2147352576" || v["suid_bit"] != false {
				t.Errorf("uid %v, set-user-id copy ran as %q, bit kept %v: want the jail's id and no bit", v["uid"], v["suid_uid"], v["suid_bit"])
			}
			env := v["env"].(map[string]any)
			if env["IMAGE_VAR"] != "from-the-image" || env["PATH"] != "/usr/local/bin:/usr/bin:/bin" || env["HOME"] != "/scratch" {
				t.Errorf("image ENV not honoured: %v", env)
			}
			for _, k := range []string{"LD_PRELOAD", "PYTHONPATH", "PYTHONINSPECT"} {
				if _, ok := env[k]; ok {
					t.Errorf("the image's %s reached the skill: %v", k, env)
				}
			}
			if !slices.Contains(toStrings(v["usr_bin"]), "python3.11") || slices.Contains(toStrings(v["usr_bin"]), "go") {
				t.Errorf("/usr/bin is not the image's: %v", v["usr_bin"])
			}
		}
	})

	t.Run("trusted image gets a zygote", func(t *testing.T) {
		d, err := imageDigest(filepath.Join(dir, "image"))
		if err != nil {
			t.Fatal(err)
		}
		s := spec(sandbox.Container{Image: "oci:image", Python: "/usr/bin/python3.11"})
		s.TrustedEnvironments = []string{d}
		sb := openBox(t, Options{ImageCache: cache}, s)
		res, err := call(t, sb, map[string]any{})
		if err != nil {
			t.Fatal(err)
		}
		if v := value(t, res); v["pid"] == float64(1) || v["marker"] != "only in the image\n" {
			t.Errorf("trusted image: pid %v (want a zygote's child), marker %q", v["pid"], v["marker"])
		}
	})

	refusals := []struct {
		name string
		c    sandbox.Container
		kind error
		msg  string
	}{
		{"pinned digest moved", sandbox.Container{Image: "oci:image", Digest: "sha256:" + strings.Repeat("0", 64)}, errdefs.ErrDenied, "not the sha256:000"},
		{"no such python", sandbox.Container{Image: "oci:image", Python: "/opt/python3"}, errdefs.ErrInvalid, "image python /opt/python3: not in the image"},
		{"escaping path", sandbox.Container{Image: "oci:../elsewhere"}, errdefs.ErrInvalid, "must stay inside"},
		{"dockerfile", sandbox.Container{Dockerfile: "Dockerfile"}, errdefs.ErrUnavailable, "Dockerfile builds are not available yet"},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(Options{ImageCache: cache}).Open(context.Background(), spec(tt.c))
			if !errors.Is(err, tt.kind) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("Open: %v, want %v with %q", err, tt.kind, tt.msg)
			}
		})
	}
}

// imageDigest is the digest of the one image in the layout at dir.
func imageDigest(dir string) (string, error) {
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
