//go:build linux

package linux

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/landlock-lsm/go-landlock/landlock/lltest"
)

// TestLandlockLayer applies the jail's Landlock layer in a subprocess (the
// restriction is irreversible) and checks that a read outside the granted
// paths and a TCP connect to a listening port are both denied, while the
// granted paths and a connect to the granted (egress proxy) port stay
// usable, and bind stays denied.
func TestLandlockLayer(t *testing.T) {
	abi, err := landlockABI()
	if err != nil {
		t.Skipf("host lacks Landlock: %v", err)
	}
	lltest.RunInSubprocess(t, func() {
		allowed, secret := lltest.TempDir(t), lltest.TempDir(t)
		if err := os.WriteFile(filepath.Join(allowed, "ok"), []byte("ok"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(secret, "key"), []byte("secret"), 0o600); err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		// The egress proxy's port is the one connect a network grant allows.
		proxy, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer proxy.Close()
		proxyPort := uint16(proxy.Addr().(*net.TCPAddr).Port)
		if err := restrictLandlock(abi, fsRules{RODirs: []string{allowed}, RWFiles: []string{"/dev/null"},
			ConnectTCP: []uint16{proxyPort}}); err != nil {
			t.Fatalf("restrict: %v", err)
		}
		if b, err := os.ReadFile(filepath.Join(allowed, "ok")); err != nil || string(b) != "ok" {
			t.Errorf("granted read: %q, %v", b, err)
		}
		if _, err := os.ReadFile(filepath.Join(secret, "key")); !errors.Is(err, syscall.EACCES) {
			t.Errorf("read outside the grant: err = %v, want EACCES", err)
		}
		if err := os.WriteFile(filepath.Join(allowed, "new"), []byte("x"), 0o644); !errors.Is(err, syscall.EACCES) {
			t.Errorf("write into a read-only grant: err = %v, want EACCES", err)
		}
		if abi < 4 {
			t.Logf("Landlock ABI %d has no TCP rules; connect not checked", abi)
			return
		}
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			c.Close()
		}
		if !errors.Is(err, syscall.EACCES) {
			t.Errorf("TCP connect: err = %v, want EACCES", err)
		}
		c, err = net.Dial("tcp", proxy.Addr().String())
		if err != nil {
			t.Errorf("TCP connect to the granted (proxy) port: %v", err)
		} else {
			c.Close()
		}
		// Plain TCP, as Python's sockets are (Go's Listen defaults to MPTCP).
		var lc net.ListenConfig
		lc.SetMultipathTCP(false)
		if l, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0"); err == nil {
			l.Close()
			t.Errorf("TCP bind allowed after restriction")
		} else if !errors.Is(err, syscall.EACCES) {
			t.Errorf("TCP bind: err = %v, want EACCES", err)
		}
	})
}
