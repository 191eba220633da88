package skillbox

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/skillbox-dev/skillbox/skill"
)

// readBytes is what this process has read so far (/proc/self/io's rchar).
func readBytes(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Skipf("no /proc/self/io: %v", err)
	}
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("rchar: ")); ok {
			n, _ := strconv.ParseInt(string(v), 10, 64)
			return n
		}
	}
	t.Skip("no rchar in /proc/self/io")
	return 0
}

// A served skill's folder that stops being a valid bundle (a FIFO added,
// too many files, too large) is digested once, not at every check of the
// watcher: it used to be hashed again each second, up to the bundle
// limit (256 MiB), for as long as the server ran, whether or not anyone
// called the skill again.
func TestWatcherDigestsAnInvalidFolderOnce(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil && os.Getenv("SKILLBOX_PYTHON") == "" {
		t.Skip("python3 is not installed")
	}
	root := t.TempDir()
	dir := filepath.Join(root, "cat", "name")
	writeSkill(t, dir, "1")
	if err := os.WriteFile(filepath.Join(dir, "data.bin"), bytes.Repeat([]byte("x"), 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	rt, err := New(WithRoots(skill.Root{Path: root, Tier: skill.TierProject}), WithCacheDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	if _, err := rt.Call(context.Background(), "cat/name", nil, CallOptions{Backend: "process"}); err != nil {
		t.Fatal(err)
	}
	// After data.bin in the digest's order: the whole 8 MiB is read first.
	if err := syscall.Mkfifo(filepath.Join(dir, "zz"), 0o644); err != nil {
		t.Skipf("cannot make a fifo here: %v", err)
	}
	rt.check(dir) // sees the change, digests, finds the folder invalid
	before := readBytes(t)
	for range 4 {
		rt.check(dir)
	}
	if got := readBytes(t) - before; got > 6<<20 {
		t.Errorf("4 checks of an unchanged invalid folder read %d bytes: it was digested again", got)
	}
	if _, err := rt.Call(context.Background(), "cat/name", nil, CallOptions{Backend: "process"}); err == nil {
		t.Error("a call of the invalid folder ran")
	}
}
