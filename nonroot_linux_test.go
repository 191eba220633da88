package skillbox_test

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/skillbox-dev/skillbox/internal/testpki"
)

// nonRoot builds the real binary where an unprivileged user can run it and
// returns a function running it as uid 65534 (HOME and cwd a folder of that
// user's, returned too) that decodes its --json output and exit code.
func nonRoot(t *testing.T) (run func(args ...string) (map[string]any, int), home string) {
	t.Helper()
	command, home := nonRootCommand(t)
	return func(args ...string) (map[string]any, int) {
		cmd := command(args...)
		out, _ := cmd.Output()
		var m map[string]any
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatalf("%v: not JSON: %q", args, out)
		}
		return m, cmd.ProcessState.ExitCode()
	}, home
}

// nonRootCommand builds the real binary where an unprivileged user can run
// it and returns a function making the command that runs it with args as
// uid 65534, HOME and cwd home (a folder of that user's), PATH and
// SKILLBOX_PYTHON set (add to its Env).
func nonRootCommand(t *testing.T) (command func(args ...string) *exec.Cmd, home string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch to an unprivileged user (this test is the non-root path)")
	}
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("needs /usr/bin/python3 readable by an unprivileged user")
	}
	dir, err := os.MkdirTemp("", "skillbox-nonroot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "skillbox")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/skillbox").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	home = filepath.Join(dir, "home")
	os.Mkdir(home, 0o755)
	os.Chown(home, 65534, 65534)
	return func(args ...string) *exec.Cmd {
		cmd := exec.Command(bin, args...)
		cmd.Dir = home
		cmd.Env = []string{"HOME=" + home, "PATH=/usr/bin:/bin", "SKILLBOX_PYTHON=/usr/bin/python3"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		return cmd
	}, home
}

// TestNonRootUser runs the real binary as an unprivileged user: the linux
// jail then needs a user namespace. Without writable cgroups it must refuse
// with a message naming the missing layers, and run with --best-effort,
// reporting each missing layer.
func TestNonRootUser(t *testing.T) {
	run, _ := nonRoot(t)
	args := []string{"run", "text/word_stats", "--params", `{"text":"one two"}`, "--backend", "linux", "--json"}
	m, code := run(args...)
	if code == 0 {
		// The host lets this user create cgroups: the full jail ran.
		if m["backend"] != "linux" {
			t.Fatalf("ran on %v", m["backend"])
		}
		return
	}
	e, _ := m["error"].(map[string]any)
	if code != 5 || e["kind"] != "unavailable" || !strings.Contains(e["message"].(string), "--best-effort") {
		t.Fatalf("without --best-effort: exit %d, %v", code, m)
	}
	// auto refuses too, and offers --best-effort (a jail without the
	// missing layers) before the process backend (no jail at all).
	m, code = run("run", "text/word_stats", "--params", `{"text":"one two"}`, "--json")
	e, _ = m["error"].(map[string]any)
	msg, _ := e["message"].(string)
	if be, proc := strings.Index(msg, "--best-effort"), strings.Index(msg, "--backend process"); code != 5 || be < 0 || proc < be {
		t.Errorf("auto without --best-effort: exit %d, want --best-effort offered before --backend process: %q", code, msg)
	}
	m, code = run(append(args, "--best-effort")...)
	if code != 0 || m["backend"] != "linux" {
		t.Fatalf("with --best-effort: exit %d, %v", code, m)
	}
	if w, _ := m["warnings"].([]any); len(w) == 0 || !strings.Contains(w[0].(string), "best-effort: running without") {
		t.Errorf("best-effort run does not report what it ran without: %v", m["warnings"])
	}
	if res := m["result"].(map[string]any); res["words"] != float64(2) {
		t.Errorf("result %v", res)
	}
}

// TestNonRootNetworkGrant: as an unprivileged user (user namespace) a
// network grant works through the egress proxy: the granted host:port is
// reached (a loopback server of this test, by --egress-resolve) and another
// port on the same address is refused; HTTPS to a server of a test CA
// verifies with urllib's defaults once --ca-file names that CA.
func TestNonRootNetworkGrant(t *testing.T) {
	run, home := nonRoot(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello from the host") }))
	defer srv.Close()
	pki := testpki.New(t, "a.test")
	caFile, leaf := pki.WriteCA(t, home), pki.Leaf
	tlsSrv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello over tls") }))
	tlsSrv.TLS = &tls.Config{Certificates: []tls.Certificate{leaf}}
	tlsSrv.StartTLS()
	defer tlsSrv.Close()
	tlsPort := tlsSrv.Listener.Addr().(*net.TCPAddr).Port
	closed := httptest.NewServer(http.NotFoundHandler())
	closedPort := closed.Listener.Addr().(*net.TCPAddr).Port
	closed.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	dir := filepath.Join(home, "skills", "test", "fetch")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "manifest.yaml"), fmt.Appendf(nil, `name: fetch
version: "1"
description: fetches a page
permissions:
  network: ["a.test:%d", "a.test:%d"]
`, port, tlsPort), 0o644)
	os.WriteFile(filepath.Join(dir, "skill.py"), []byte(`from skillware.core.base_skill import BaseSkill
class S(BaseSkill):
    def execute(self, params):
        import urllib.request
        try:
            return {"body": urllib.request.urlopen(params["url"], timeout=5).read().decode()}
        except Exception as e:
            return {"error": str(e)}
`), 0o644)
	filepath.Walk(filepath.Join(home, "skills"), func(p string, _ os.FileInfo, _ error) error { return os.Chown(p, 65534, 65534) })
	call := func(url string, extra ...string) map[string]any {
		t.Helper()
		m, code := run(append([]string{"run", "test/fetch", "--params", fmt.Sprintf(`{"url":%q}`, url), "--backend", "linux", "--best-effort",
			"--allow-net", fmt.Sprintf("a.test:%d", port), "--allow-net", fmt.Sprintf("a.test:%d", tlsPort), "--egress-resolve", "a.test=127.0.0.1", "--json"}, extra...)...)
		if code != 0 || m["backend"] != "linux" {
			t.Fatalf("exit %d: %v", code, m)
		}
		return m["result"].(map[string]any)
	}
	if res := call(fmt.Sprintf("http://a.test:%d/", port)); res["body"] != "hello from the host" {
		t.Errorf("granted host: %v", res)
	}
	if res := call(fmt.Sprintf("http://a.test:%d/", closedPort)); res["body"] != nil || res["error"] == nil {
		t.Errorf("ungranted port reached: %v", res)
	}
	if res := call(fmt.Sprintf("http://127.0.0.1:%d/", port)); res["body"] != nil || res["error"] == nil {
		t.Errorf("loopback address reached directly: %v", res)
	}
	tlsURL := fmt.Sprintf("https://a.test:%d/", tlsPort)
	if res := call(tlsURL, "--ca-file", caFile); res["body"] != "hello over tls" {
		t.Errorf("HTTPS with --ca-file: %v", res)
	}
	if res := call(tlsURL); res["body"] != nil || !strings.Contains(fmt.Sprint(res["error"]), "CERTIFICATE_VERIFY_FAILED") {
		t.Errorf("HTTPS without --ca-file: %v", res)
	}
}
