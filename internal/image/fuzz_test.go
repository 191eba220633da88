package image

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzUnpackLayer applies arbitrary bytes as a layer: it may fail, but it
// must not panic and must never touch anything outside the root.
func FuzzUnpackLayer(f *testing.F) {
	seeds := [][]ent{
		{symlink("evil", "/etc"), file("evil/passwd", "x")},
		{symlink("up", "../../.."), file("up/outside/sentinel", "x"), hardlink("h", "up/outside/sentinel")},
		{dir("d"), file("d/.wh..wh..opq", ""), file("d/.wh.x", ""), file(".wh.d", "")},
		{ent{name: "dev/null", typ: tar.TypeChar, mode: 0o666}, ent{name: "s", body: "x", typ: tar.TypeReg, mode: 0o4755}},
		{file("../x", "x")},
	}
	for _, s := range seeds {
		var t testing.T
		f.Add(tarBytes(&t, s...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		outside := filepath.Join(parent, "outside")
		if err := os.Mkdir(outside, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(outside, "sentinel"), []byte("keep"), 0o644); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(parent, "rootfs")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		root, err := os.OpenRoot(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer root.Close()
		u := &unpacker{ctx: context.Background(), dir: dir, root: root, lim: Limits{MaxBytes: 1 << 20, MaxFiles: 1000}, dirs: map[string]dirMeta{}, resolved: map[string]string{}}
		if err := u.apply(tar.NewReader(bytes.NewReader(data))); err == nil {
			u.finishDirs()
		}
		ents, _ := os.ReadDir(parent)
		if len(ents) != 2 {
			t.Fatalf("the parent folder now holds %d entries", len(ents))
		}
		got, _ := os.ReadDir(outside)
		if b, _ := os.ReadFile(filepath.Join(outside, "sentinel")); len(got) != 1 || string(b) != "keep" {
			t.Fatalf("outside changed: %d entries, sentinel %q", len(got), b)
		}
	})
}

// FuzzParseRef: a local reference is absolute, clean and, when written
// relative, inside its base; every accepted reference reads back the same.
func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"python:3.12", "oci-archive:a.tar", "oci:../x", "docker-archive:/abs", "localhost:5000/a/b@sha256:" + strings.Repeat("0", 64)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRef(s, "/base")
		if err != nil {
			return
		}
		if r.Local() {
			if !filepath.IsAbs(r.Name) || filepath.Clean(r.Name) != r.Name {
				t.Fatalf("%q: local name %q", s, r.Name)
			}
			if p := strings.SplitN(s, ":", 2)[1]; !filepath.IsAbs(p) && r.Name != "/base" && !strings.HasPrefix(r.Name, "/base/") {
				t.Fatalf("%q: relative path left the base: %q", s, r.Name)
			}
		}
		back, err := ParseRef(r.String(), "")
		if err != nil || back != r {
			t.Fatalf("%q: %v does not read back: %v, %v", s, r, back, err)
		}
	})
}
