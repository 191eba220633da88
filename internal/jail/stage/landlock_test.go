//go:build linux

package stage

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// landlockChildEnv, set only by TestLandlockLayer for the process it
// starts, holds the two directories the child checks (allowed, secret) and
// makes that process the restricted child.
const landlockChildEnv = "SKILLBOX_TEST_LANDLOCK_CHILD"

// TestLandlockLayer applies the jail's Landlock layer in a subprocess (the
// restriction is irreversible) and checks that a read outside the granted
// paths and a TCP connect to a listening port are both denied, while the
// granted paths and a connect to the granted (egress proxy) port stay
// usable, and bind stays denied. A file moves between folders of a
// writable grant (Landlock's "refer", ABI >= 2: setuptools' os.replace of
// every wheel it builds), never into a read-only one.
//
// The subprocess is this test binary re-run for exactly one iteration of
// exactly this test, whatever -count, -cpu, -shuffle or -coverprofile the
// parent got: with the parent's flags (as lltest.RunInSubprocess passes
// them) a -count=2 child ran the test twice in the same process, and the
// second iteration failed because the first had already restricted it.
func TestLandlockLayer(t *testing.T) {
	if dirs, ok := os.LookupEnv(landlockChildEnv); ok {
		landlockChild(t, dirs)
		return
	}
	abi, err := landlockABI()
	if err != nil {
		t.Skipf("host lacks Landlock: %v", err)
	}
	allowed, secret, writable := t.TempDir(), t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(allowed, "ok"), []byte("ok"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(secret, "key"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"-test.run=^TestLandlockLayer$", "-test.count=1", "-test.cpu=1", "-test.v=true", "-test.timeout=2m"}
	env := landlockChildEnv + "=" + allowed + string(filepath.ListSeparator) + secret + string(filepath.ListSeparator) + writable
	if testing.CoverMode() != "" {
		// A coverage build writes its counters when the child exits,
		// after the restriction: give it a directory of its own
		// (discarded) that the child's rules also grant.
		cover := t.TempDir()
		args = append(args, "-test.gocoverdir="+cover)
		env += string(filepath.ListSeparator) + cover
	}
	cmd := exec.CommandContext(t.Context(), exe, args...)
	cmd.Env = append(os.Environ(), env)
	out, err := cmd.CombinedOutput()
	t.Logf("restricted subprocess (Landlock ABI %d):\n%s", abi, out)
	if err != nil {
		t.Fatalf("restricted subprocess: %v", err)
	}
	// A child that ran nothing would pass too: insist on the one test.
	if n := strings.Count(string(out), "--- PASS: TestLandlockLayer ("); n != 1 {
		t.Fatalf("restricted subprocess passed TestLandlockLayer %d times, want 1", n)
	}
}

// landlockChild is TestLandlockLayer in the subprocess: it restricts its
// own process and probes what is left.
func landlockChild(t *testing.T, dirs string) {
	d := filepath.SplitList(dirs)
	if len(d) < 3 || len(d) > 4 {
		t.Fatalf("%s=%q: want allowed%[3]csecret%[3]cwritable[%[3]ccoverdir]", landlockChildEnv, dirs, filepath.ListSeparator)
	}
	allowed, secret, writable, rw := d[0], d[1], d[2], d[2:]
	abi, err := landlockABI()
	if err != nil {
		t.Fatalf("the parent found Landlock, the child does not: %v", err)
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
	if err := restrictLandlock(abi, fsRules{RODirs: []string{allowed}, RWDirs: rw, RWFiles: []string{"/dev/null"},
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
	from, to := filepath.Join(writable, "tmp"), filepath.Join(writable, "dist")
	for _, dir := range []string{from, to} {
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(from, "w.whl"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	err = os.Rename(filepath.Join(from, "w.whl"), filepath.Join(to, "w.whl"))
	switch {
	case abi >= 2 && err != nil:
		t.Errorf("move between folders of a writable grant: %v", err)
	case abi < 2 && !errors.Is(err, syscall.EXDEV):
		t.Errorf("move between folders on Landlock ABI 1: err = %v, want EXDEV (it cannot be granted)", err)
	}
	if err := os.Rename(filepath.Join(to, "w.whl"), filepath.Join(allowed, "w.whl")); err == nil {
		t.Errorf("a file moved into a read-only grant")
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
}
