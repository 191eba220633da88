// Package envtest makes what tests of per-skill environments build from:
// small wheels, source distributions, and a PEP 503 index serving them on
// loopback.
package envtest

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

// Wheel writes a pure-Python wheel of name and version into dir, whose
// module name.py holds body and which requires deps; it returns its path.
func Wheel(t testing.TB, dir, name, version, body string, deps ...string) string {
	t.Helper()
	info := name + "-" + version + ".dist-info"
	files := [][2]string{
		{name + ".py", body},
		{info + "/METADATA", "Metadata-Version: 2.1\nName: " + name + "\nVersion: " + version + "\n" + requiresDist(deps)},
		{info + "/WHEEL", "Wheel-Version: 1.0\nGenerator: skillbox-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"},
	}
	path := filepath.Join(dir, name+"-"+version+"-py3-none-any.whl")
	return writeWheel(t, path, info, files)
}

// writeWheel writes a wheel at path of files (name, content) plus RECORD
// in the folder info; the files named in executable get mode 0755.
func writeWheel(t testing.TB, path, info string, files [][2]string, executable ...string) string {
	t.Helper()
	var buf bytes.Buffer
	z := zip.NewWriter(&buf)
	var record strings.Builder
	for _, f := range files {
		h := &zip.FileHeader{Name: f[0], Method: zip.Deflate}
		h.SetMode(0o644)
		if slices.Contains(executable, f[0]) {
			h.SetMode(0o755)
		}
		w, err := z.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(f[1]))
		sum := sha256.Sum256([]byte(f[1]))
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", f[0], base64.RawURLEncoding.EncodeToString(sum[:]), len(f[1]))
	}
	record.WriteString(info + "/RECORD,,\n")
	w, _ := z.Create(info + "/RECORD")
	w.Write([]byte(record.String()))
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// ScriptWheel writes a py3-none-any wheel of name and version into dir
// that installs body as the executable script bin/SCRIPT (from
// NAME-VERSION.data/scripts), and returns its path.
func ScriptWheel(t testing.TB, dir, name, version, script, body string) string {
	t.Helper()
	info := name + "-" + version + ".dist-info"
	scriptPath := name + "-" + version + ".data/scripts/" + script
	files := [][2]string{
		{name + ".py", "VERSION = '" + version + "'\n"},
		{scriptPath, body},
		{info + "/METADATA", "Metadata-Version: 2.1\nName: " + name + "\nVersion: " + version + "\n"},
		{info + "/WHEEL", "Wheel-Version: 1.0\nGenerator: skillbox-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"},
	}
	return writeWheel(t, filepath.Join(dir, name+"-"+version+"-py3-none-any.whl"), info, files, scriptPath)
}

func requiresDist(deps []string) string {
	var s string
	for _, d := range deps {
		s += "Requires-Dist: " + d + "\n"
	}
	return s
}

// Sdist writes a source distribution name-version.tar.gz into dir holding
// files (paths relative to its top folder, name-version/) and returns its
// path.
func Sdist(t testing.TB, dir, name, version string, files map[string]string) string {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	top := name + "-" + version
	for p, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: top + "/" + p, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, top+".tar.gz")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Index serves the wheels and source distributions in dir as a PEP 503
// simple index on loopback and counts the files fetched. url is the
// index's /simple URL.
func Index(t testing.TB, dir string) (url string, fetched *atomic.Int64) {
	t.Helper()
	fetched = new(atomic.Int64)
	mux := http.NewServeMux()
	mux.HandleFunc("/simple/{project}/", func(w http.ResponseWriter, r *http.Request) {
		project := strings.ReplaceAll(r.PathValue("project"), "-", "_")
		var m []string
		for _, pat := range []string{"-*.whl", "-*.tar.gz"} {
			g, _ := filepath.Glob(filepath.Join(dir, project+pat))
			m = append(m, g...)
		}
		if len(m) == 0 {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, "<!DOCTYPE html><html><body>")
		for _, f := range m {
			data, _ := os.ReadFile(f)
			sum := sha256.Sum256(data)
			fmt.Fprintf(w, `<a href="/files/%s#sha256=%x">%s</a>`, filepath.Base(f), sum, filepath.Base(f))
		}
		fmt.Fprint(w, "</body></html>")
	})
	mux.HandleFunc("/files/{file}", func(w http.ResponseWriter, r *http.Request) {
		fetched.Add(1)
		http.ServeFile(w, r, filepath.Join(dir, filepath.Base(r.PathValue("file"))))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL + "/simple", fetched
}

// InstalledWheel packs the package the host's python imports as module
// (its folder, __pycache__ and compiled extension modules left out) into a
// py3-none-any wheel of the distribution dist at the module's __version__,
// in dir: an offline, pure-Python stand-in for that distribution's real
// wheel (PyYAML from Debian's python3-yaml, say, which falls back to pure
// Python without its _yaml extension), which both the linux and the
// pyodide backends install. It returns "" when python lacks the module.
func InstalledWheel(t testing.TB, dir, python, module, dist string) string {
	t.Helper()
	return InstalledWheelWith(t, dir, python, module, dist, nil)
}

// InstalledWheelWith is InstalledWheel with more files in the wheel's
// .dist-info folder (name → content): entry_points.txt, say, which
// setuptools finds wheel's bdist_wheel command by.
func InstalledWheelWith(t testing.TB, dir, python, module, dist string, extra map[string]string) string {
	t.Helper()
	out, err := exec.Command(python, "-I", "-c", "import os, sys, "+module+" as m; print(os.path.dirname(m.__file__)); print(getattr(m, '__version__', '0'))").Output()
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	src, version := lines[0], lines[len(lines)-1]
	norm := strings.ToLower(strings.ReplaceAll(dist, "-", "_"))
	info := norm + "-" + version + ".dist-info"
	var files [][2]string
	err = filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "__pycache__" {
			return filepath.SkipDir
		}
		if !d.Type().IsRegular() || extension(d.Name()) {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(filepath.Dir(src), p)
		files = append(files, [2]string{filepath.ToSlash(rel), string(b)})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	files = append(files,
		[2]string{info + "/METADATA", "Metadata-Version: 2.1\nName: " + dist + "\nVersion: " + version + "\n"},
		[2]string{info + "/WHEEL", "Wheel-Version: 1.0\nGenerator: skillbox-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"})
	for _, name := range slices.Sorted(maps.Keys(extra)) {
		files = append(files, [2]string{info + "/" + name, extra[name]})
	}
	return writeWheel(t, filepath.Join(dir, norm+"-"+version+"-py3-none-any.whl"), info, files)
}

// WheelOf writes a py3-none-any wheel of name and version into dir
// holding files (path in site-packages → content), and returns its path.
func WheelOf(t testing.TB, dir, name, version string, files map[string]string) string {
	t.Helper()
	return TaggedWheel(t, dir, name, version, "py3-none-any", files)
}

// TaggedWheel writes a wheel of name and version with the compatibility
// tag tag ("cp311-cp311-manylinux_2_17_x86_64", as a compiled wheel has)
// into dir, holding files, and returns its path. The files need not be
// what the tag says: pip goes by the tag.
func TaggedWheel(t testing.TB, dir, name, version, tag string, files map[string]string) string {
	t.Helper()
	info := name + "-" + version + ".dist-info"
	pure := strings.HasSuffix(tag, "-none-any")
	fs := [][2]string{
		{info + "/METADATA", "Metadata-Version: 2.1\nName: " + name + "\nVersion: " + version + "\n"},
		{info + "/WHEEL", fmt.Sprintf("Wheel-Version: 1.0\nGenerator: skillbox-test\nRoot-Is-Purelib: %t\nTag: %s\n", pure, tag)},
	}
	for _, p := range slices.Sorted(maps.Keys(files)) {
		fs = append(fs, [2]string{p, files[p]})
	}
	return writeWheel(t, filepath.Join(dir, name+"-"+version+"-"+tag+".whl"), info, fs)
}

// extension reports whether name is a compiled extension module's file.
func extension(name string) bool {
	for _, ext := range []string{".so", ".pyd", ".dylib"} {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}

// backendSource is an in-tree PEP 517 build backend (no setuptools
// needed) whose build_wheel builds a wheel of %[1]s %[2]s: its module
// %[1]s.py holds what the Python expression %[3]s evaluates to when the
// wheel is built, in the build (os and resource imported).
const backendSource = `import base64, hashlib, os, resource, zipfile

DIST = "%[1]s-%[2]s.dist-info"


def get_requires_for_build_wheel(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    files = {
        "%[1]s.py": %[3]s,
        DIST + "/METADATA": "Metadata-Version: 2.1\nName: %[1]s\nVersion: %[2]s\n",
        DIST + "/WHEEL": "Wheel-Version: 1.0\nGenerator: t\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    name = "%[1]s-%[2]s-py3-none-any.whl"
    record = []
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as z:
        for path, body in files.items():
            z.writestr(path, body)
            digest = base64.urlsafe_b64encode(hashlib.sha256(body.encode()).digest()).rstrip(b"=").decode()
            record.append("%%s,sha256=%%s,%%d" %% (path, digest, len(body)))
        record.append(DIST + "/RECORD,,")
        z.writestr(DIST + "/RECORD", "\n".join(record) + "\n")
    return name
`

// BuiltSdist writes a source distribution of name (a plain module name)
// and version into dir whose in-tree build backend builds a wheel of the
// module name.py holding what the Python expression module evaluates to
// at build time, in the build's jail (os and resource imported: the build
// can record what it ran under); it returns its path.
func BuiltSdist(t testing.TB, dir, name, version, module string) string {
	t.Helper()
	return Sdist(t, dir, name, version, map[string]string{
		"pyproject.toml":     "[build-system]\nrequires = []\nbuild-backend = \"" + name + "_backend\"\nbackend-path = [\".\"]\n",
		"PKG-INFO":           "Metadata-Version: 2.1\nName: " + name + "\nVersion: " + version + "\n",
		name + "_backend.py": fmt.Sprintf(backendSource, name, version, module),
	})
}
