//go:build unix

package skill

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/skillbox-dev/skillbox/errdefs"
)

func TestDigestRefusesFifo(t *testing.T) {
	dir := makeBundle(t, bundleFiles)
	if err := syscall.Mkfifo(filepath.Join(dir, "data", "pipe"), 0o644); err != nil {
		t.Skipf("cannot make a fifo here: %v", err)
	}
	_, err := Digest(dir)
	if err == nil || errdefs.KindOf(err) != errdefs.Invalid || !strings.Contains(err.Error(), "data/pipe is a fifo") {
		t.Fatalf("want fifo refusal naming data/pipe, got %v", err)
	}
}
