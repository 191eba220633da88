package skillbox_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestNonRootUser runs the real binary as an unprivileged user: the linux
// jail then needs a user namespace. Without writable cgroups it must refuse
// with a message naming the missing layers, and run with --best-effort,
// reporting each missing layer.
func TestNonRootUser(t *testing.T) {
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
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "skillbox")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/skillbox").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	home := filepath.Join(dir, "home")
	os.Mkdir(home, 0o755)
	os.Chown(home, 65534, 65534)
	run := func(args ...string) (map[string]any, int) {
		cmd := exec.Command(bin, args...)
		cmd.Dir = home
		cmd.Env = []string{"HOME=" + home, "PATH=/usr/bin:/bin", "SKILLBOX_PYTHON=/usr/bin/python3"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, _ := cmd.Output()
		var m map[string]any
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatalf("%v: not JSON: %q", args, out)
		}
		return m, cmd.ProcessState.ExitCode()
	}
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
