package skill

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/skillbox-dev/skillbox/errdefs"
)

var bundleFiles = map[string]string{
	"manifest.yaml":   manifestFor("wallet"),
	"skill.py":        "print('hi')\n",
	"instructions.md": "Use me.\n",
	"data/a.csv":      "1,2\n",
	"data/b/c.txt":    "c\n",
	"lib/util.py":     "X = 1\n",
}

func makeBundle(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, files)
	return dir
}

func mustDigest(t *testing.T, dir string) string {
	t.Helper()
	d, err := Digest(dir)
	if err != nil {
		t.Fatalf("Digest(%s): %v", dir, err)
	}
	return d
}

func TestDigestFormat(t *testing.T) {
	d := mustDigest(t, makeBundle(t, bundleFiles))
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(d) {
		t.Errorf("digest %q is not sha256:<64 hex>", d)
	}
}

// TestDigestKnownValue pins the documented byte format, so it cannot change
// by accident (trust stores hold these digests).
func TestDigestKnownValue(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"a/x": "hi"})
	if err := os.Symlink("x", filepath.Join(dir, "a", "l")); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("hi"))
	var b []byte
	u64 := func(n int) { b = append(b, 0, 0, 0, 0, 0, 0, 0, byte(n)) }
	b = append(b, "skillbox-bundle-digest-v1\n"...)
	u64(1)
	b = append(b, "a"...)
	b = append(b, 'd')
	u64(3)
	b = append(b, "a/l"...)
	b = append(b, 'l')
	u64(1)
	b = append(b, "x"...)
	u64(3)
	b = append(b, "a/x"...)
	b = append(b, 'f')
	u64(2)
	b = append(b, sum[:]...)
	want := sha256.Sum256(b)
	if got := mustDigest(t, dir); got != "sha256:"+hex.EncodeToString(want[:]) {
		t.Errorf("Digest = %s, want sha256:%x", got, want)
	}
}

func TestDigestStable(t *testing.T) {
	a := makeBundle(t, bundleFiles)
	// Same content created in another order, with other times and other
	// non-execute permission bits.
	b := t.TempDir()
	names := []string{"lib/util.py", "data/b/c.txt", "skill.py", "instructions.md", "data/a.csv", "manifest.yaml"}
	for _, n := range names {
		writeFiles(t, b, map[string]string{n: bundleFiles[n]})
	}
	old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(b, "skill.py"), old, old); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(b, "data/a.csv"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Ignored content.
	writeFiles(t, b, map[string]string{"__pycache__/skill.cpython-312.pyc": "junk", "lib/__pycache__/util.pyc": "junk", ".git/HEAD": "ref"})
	da, db := mustDigest(t, a), mustDigest(t, b)
	if da != db {
		fa, _ := Files(a)
		fb, _ := Files(b)
		t.Errorf("digests differ: %s vs %s\n%s", da, db, cmp.Diff(fa, fb))
	}
	if again := mustDigest(t, a); again != da {
		t.Errorf("digest not repeatable: %s then %s", da, again)
	}
}

func TestDigestSensitive(t *testing.T) {
	base := mustDigest(t, makeBundle(t, bundleFiles))
	tests := []struct {
		name   string
		change func(t *testing.T, dir string)
	}{
		{"content", func(t *testing.T, dir string) { writeFiles(t, dir, map[string]string{"lib/util.py": "X = 2\n"}) }},
		{"executable bit", func(t *testing.T, dir string) { must(t, os.Chmod(filepath.Join(dir, "skill.py"), 0o755)) }},
		{"rename", func(t *testing.T, dir string) {
			must(t, os.Rename(filepath.Join(dir, "data/a.csv"), filepath.Join(dir, "data/a2.csv")))
		}},
		{"move across dirs", func(t *testing.T, dir string) {
			must(t, os.Rename(filepath.Join(dir, "data/b/c.txt"), filepath.Join(dir, "data/c.txt")))
		}},
		{"added file", func(t *testing.T, dir string) { writeFiles(t, dir, map[string]string{"new.txt": ""}) }},
		{"added empty dir", func(t *testing.T, dir string) { must(t, os.Mkdir(filepath.Join(dir, "empty"), 0o755)) }},
		{"removed file", func(t *testing.T, dir string) { must(t, os.Remove(filepath.Join(dir, "instructions.md"))) }},
		{"added symlink", func(t *testing.T, dir string) { must(t, os.Symlink("data/a.csv", filepath.Join(dir, "link"))) }},
		{"hidden file", func(t *testing.T, dir string) { writeFiles(t, dir, map[string]string{".env": "K=V"}) }},
		{"pyc outside __pycache__", func(t *testing.T, dir string) { writeFiles(t, dir, map[string]string{"lib/util.pyc": "x"}) }},
	}
	seen := map[string]string{base: "base"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := makeBundle(t, bundleFiles)
			tt.change(t, dir)
			d := mustDigest(t, dir)
			if prev, dup := seen[d]; dup {
				t.Errorf("digest after %q equals the digest of %q", tt.name, prev)
			}
			seen[d] = tt.name
		})
	}
}

func TestDigestSymlinkTargetChange(t *testing.T) {
	dir := makeBundle(t, bundleFiles)
	link := filepath.Join(dir, "link")
	must(t, os.Symlink("data/a.csv", link))
	d1 := mustDigest(t, dir)
	must(t, os.Remove(link))
	must(t, os.Symlink("data/b/c.txt", link))
	if d2 := mustDigest(t, dir); d1 == d2 {
		t.Error("changing a symlink target did not change the digest")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestFiles(t *testing.T) {
	dir := makeBundle(t, map[string]string{"a-b": "1", "a/b": "22", "__pycache__/x.pyc": "", "sub/__pycache__/y.pyc": ""})
	must(t, os.Chmod(filepath.Join(dir, "a/b"), 0o755))
	must(t, os.Symlink("../a-b", filepath.Join(dir, "sub", "up")))
	got, err := Files(dir)
	if err != nil {
		t.Fatal(err)
	}
	h := func(s string) string { s2 := sha256.Sum256([]byte(s)); return hex.EncodeToString(s2[:]) }
	want := []FileEntry{
		{Path: "a", Mode: ModeDir},
		{Path: "a-b", Mode: ModeFile, Size: 1, SHA256: h("1")},
		{Path: "a/b", Mode: ModeExec, Size: 2, SHA256: h("22")},
		{Path: "sub", Mode: ModeDir},
		{Path: "sub/up", Mode: ModeSymlink, Target: "../a-b"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Files (-want +got):\n%s", diff)
	}
}

func TestDigestSymlinks(t *testing.T) {
	outside := t.TempDir()
	writeFiles(t, outside, map[string]string{"secret": "s"})
	tests := []struct {
		name    string
		links   [][2]string // link path (relative), target
		wantErr string      // "" means accepted
	}{
		{"inside file", [][2]string{{"l", "data/a.csv"}}, ""},
		{"inside dir", [][2]string{{"l", "data"}}, ""},
		{"inside via dot-dot", [][2]string{{"data/b/l", "../a.csv"}}, ""},
		{"dangling inside", [][2]string{{"l", "nope/x"}}, ""},
		{"chain inside", [][2]string{{"l1", "l2"}, {"l2", "data/a.csv"}}, ""},
		{"absolute", [][2]string{{"l", filepath.Join(outside, "secret")}}, "symlink l -> " + filepath.Join(outside, "secret") + " points outside the bundle"},
		{"absolute to inside path", [][2]string{{"l", "/etc/passwd"}}, "symlink l -> /etc/passwd points outside"},
		{"dot-dot escape", [][2]string{{"l", "../secret"}}, "symlink l -> ../secret points outside the bundle"},
		{"deep dot-dot escape", [][2]string{{"data/b/l", "../../../x"}}, "symlink data/b/l -> ../../../x points outside"},
		{"through a link to dot", [][2]string{{"d", "."}, {"l", "d/d/d/.."}}, "symlink l -> d/d/d/.. points outside"},
		{"through an escaping link", [][2]string{{"l", "m/secret"}, {"m", ".."}}, "points outside the bundle"},
		{"loop", [][2]string{{"l1", "l2/x"}, {"l2", "l1/x"}}, "too many levels of symlinks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := makeBundle(t, bundleFiles)
			for _, l := range tt.links {
				must(t, os.Symlink(l[1], filepath.Join(dir, filepath.FromSlash(l[0]))))
			}
			d, err := Digest(dir)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Digest: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Digest = %s, want error %q", d, tt.wantErr)
			}
			if k := errdefs.KindOf(err); k != errdefs.Invalid {
				t.Errorf("kind %q, want invalid", k)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestDigestSymlinkedRoot(t *testing.T) {
	real := makeBundle(t, bundleFiles)
	link := filepath.Join(t.TempDir(), "linked")
	must(t, os.Symlink(real, link))
	if a, b := mustDigest(t, real), mustDigest(t, link); a != b {
		t.Errorf("digest through a linked root differs: %s vs %s", a, b)
	}
}

// The caps are the real ones: a bundle one entry over maxFiles, and one
// whose files (sparse: nothing is written) add up to more than
// maxTotalBytes, the second file refused by its size before it is read.
func TestDigestCaps(t *testing.T) {
	t.Run("files", func(t *testing.T) {
		dir := t.TempDir()
		for i := range maxFiles + 1 {
			must(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%05d", i)), nil, 0o644))
		}
		_, err := Digest(dir)
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("more than %d files", maxFiles)) || errdefs.KindOf(err) != errdefs.Invalid {
			t.Fatalf("want file-count error, got %v", err)
		}
	})
	t.Run("bytes", func(t *testing.T) {
		dir := t.TempDir()
		for _, name := range []string{"a", "b"} {
			f, err := os.Create(filepath.Join(dir, name))
			must(t, err)
			must(t, f.Truncate(maxTotalBytes/2+1))
			f.Close()
		}
		_, err := Digest(dir)
		if err == nil || !strings.Contains(err.Error(), "larger than 256MiB") || errdefs.KindOf(err) != errdefs.Invalid {
			t.Fatalf("want size error, got %v", err)
		}
	})
}

func TestDigestMissing(t *testing.T) {
	_, err := Digest(filepath.Join(t.TempDir(), "nope"))
	if errdefs.KindOf(err) != errdefs.NotFound {
		t.Fatalf("want NotFound, got %v", err)
	}
}

// A signature at the bundle root is not part of the bundle: writing one
// must not change the digest it signs (nor what trust stores and lockfiles
// pinned). Anything else of that name, or a signature elsewhere, is.
func TestDigestLeavesOutTheSignature(t *testing.T) {
	dir := makeBundle(t, bundleFiles)
	before := mustDigest(t, dir)
	writeFiles(t, dir, map[string]string{SignatureFile: "untrusted comment: x\nRWQ...\n"})
	if got := mustDigest(t, dir); got != before {
		t.Errorf("writing %s changed the digest: %s -> %s", SignatureFile, before, got)
	}
	entries, err := Files(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Path == SignatureFile {
			t.Errorf("Files lists the signature: %+v", e)
		}
	}
	for name, files := range map[string]map[string]string{
		"nested signature":    {"data/" + SignatureFile: "x"},
		"signature directory": {SignatureFile + "/x.py": "X = 1\n"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := makeBundle(t, bundleFiles)
			writeFiles(t, dir, files)
			if got := mustDigest(t, dir); got == before {
				t.Errorf("%v left the digest unchanged", files)
			}
		})
	}
}
