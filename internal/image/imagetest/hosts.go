package imagetest

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// CountingServer is an HTTP server on loopback that answers body and
// counts the connections made to it: a build that must not reach it
// leaves the count at 0.
func CountingServer(t *testing.T, body string) (port int, conns *atomic.Int32) {
	t.Helper()
	conns = new(atomic.Int32)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, body)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().(*net.TCPAddr).Port, conns
}

// HostFolder is a host folder a build's mapped uid could read and write,
// were it bound into a step, holding a file "secret" (HOST-SECRET): what a
// hostile build must neither read nor write.
func HostFolder(t *testing.T) string {
	t.Helper()
	host := t.TempDir()
	for _, d := range []string{filepath.Dir(host), host} {
		if err := os.Chmod(d, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(host, "secret"), []byte("HOST-SECRET\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return host
}
