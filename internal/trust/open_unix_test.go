//go:build unix

package trust

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A signature swapped for a FIFO after its Lstat is refused at once: its
// open waited for a writer that never came, hanging the trust check (and
// the served call behind it) for good.
func TestSignatureOpenRefusesFifo(t *testing.T) {
	p := filepath.Join(t.TempDir(), SignatureFile)
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Skipf("cannot make a fifo here: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		f, err := openRegular(p)
		if err == nil {
			f.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a FIFO was opened as a signature")
		}
	case <-time.After(20 * time.Second):
		if w, err := os.OpenFile(p, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
		<-done
		t.Fatal("opening a FIFO as a signature hung")
	}
}
