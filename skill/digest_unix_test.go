//go:build unix

package skill

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
)

func TestDigestRefusesFifo(t *testing.T) {
	dir := makeBundle(t, bundleFiles)
	if err := syscall.Mkfifo(filepath.Join(dir, "data", "pipe"), 0o644); err != nil {
		t.Skipf("cannot make a fifo here: %v", err)
	}
	_, err := Digest(dir)
	if err == nil || !strings.Contains(err.Error(), "data/pipe is a fifo") {
		t.Fatalf("want fifo refusal naming data/pipe, got %v", err)
	}
}

// TestFilesRefusesNamesThatAreNotText: a name (of a file, a folder or a
// symlink's target) that is not valid UTF-8 or holds a control character
// is refused, quoted, with what to do: it cannot be pinned, shown or
// recorded as written (JSON turned a byte 0xff into U+FFFD, so the trust
// store no longer matched its own digest and refused every external skill).
func TestFilesRefusesNamesThatAreNotText(t *testing.T) {
	tests := []struct {
		name  string
		setup func(dir string) error
		want  string
	}{
		{"file", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "data-\xff.txt"), []byte("x"), 0o644)
		}, `file name "data-\xff.txt" is not valid UTF-8; rename it`},
		{"folder", func(dir string) error {
			return os.MkdirAll(filepath.Join(dir, "data", "caf\xe9", "x"), 0o755)
		}, `folder name "data/caf\xe9" is not valid UTF-8; rename it`},
		{"newline", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "a\nb.txt"), []byte("x"), 0o644)
		}, `file name "a\nb.txt" holds a control character`},
		{"tab", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "lib", "a\tb.py"), []byte("x"), 0o644)
		}, `file name "lib/a\tb.py" holds a control character`},
		{"C1 control", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "a\u009bb"), []byte("x"), 0o644)
		}, `file name "a\u009bb" holds a control character`},
		{"symlink target", func(dir string) error {
			return os.Symlink("data-\xff.txt", filepath.Join(dir, "link"))
		}, `symlink "link" -> "data-\xff.txt": its target is not valid UTF-8; change it`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := makeBundle(t, bundleFiles)
			if err := tt.setup(dir); err != nil {
				t.Skipf("this file system refuses the name: %v", err)
			}
			_, err := Files(dir)
			if errdefs.KindOf(err) != errdefs.Invalid || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an invalid error containing %s", err, tt.want)
			}
		})
	}
}

// TestFilesIgnoredNamesNeedNotBeText: what the digest leaves out (.git,
// __pycache__) is not looked at, so names there do not matter.
func TestFilesIgnoredNamesNeedNotBeText(t *testing.T) {
	dir := makeBundle(t, bundleFiles)
	for _, p := range []string{".git/objects/\xff", "lib/__pycache__/util\xff.pyc", "lib/__pycache__/a\nb.pyc"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), nil, 0o644); err != nil {
			t.Skipf("this file system refuses the name: %v", err)
		}
	}
	if _, err := Files(dir); err != nil {
		t.Fatal(err)
	}
}

// TestResolveRefusesNamesThatAreNotText: resolving such a skill (as run,
// trust, lock and inspect do) fails with Files' error.
func TestResolveRefusesNamesThatAreNotText(t *testing.T) {
	ext, _, _, r := roots(t)
	dir := writeSkill(t, filepath.Join(ext, "cat", "odd"), "odd")
	if err := os.WriteFile(filepath.Join(dir, "data-\xff.txt"), []byte("x"), 0o644); err != nil {
		t.Skipf("this file system refuses the name: %v", err)
	}
	_, err := r.Resolve("cat/odd")
	if errdefs.KindOf(err) != errdefs.Invalid || !strings.Contains(err.Error(), `file name "data-\xff.txt" is not valid UTF-8; rename it`) {
		t.Fatalf("got %v, want an invalid error naming the file", err)
	}
}

// A file swapped for a FIFO between the look at it and its open (by anyone
// who can write the skill's folder, in a loop) is refused at once: opening
// a FIFO to read waited for a writer that never came, so the resolution,
// and the served call or the CLI waiting on it (which SIGTERM does not
// end), hung for good.
func TestOpenRefusesFifoSwappedIn(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "data.txt")
	must(t, os.WriteFile(p, []byte("x"), 0o644))
	info, err := os.Lstat(p)
	must(t, err)
	must(t, os.Remove(p))
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Skipf("cannot make a fifo here: %v", err)
	}
	opens := map[string]func() error{
		"hashFile": func() error {
			_, _, err := hashFile(p, info, 1<<20, nil)
			return err
		},
		"openRegular":    func() error { _, err := openRegular(p); return err },
		"readConfigFile": func() error { _, err := readConfigFile(p); return err },
	}
	for name, open := range opens {
		t.Run(name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() { done <- open() }()
			select {
			case err := <-done:
				if err == nil {
					t.Fatal("a FIFO was opened as the regular file it replaced")
				}
			case <-time.After(20 * time.Second):
				// Let the open return: a writer comes.
				if w, err := os.OpenFile(p, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
					w.Close()
				}
				<-done
				t.Fatal("opening a FIFO swapped in for a regular file hung")
			}
		})
	}
}
