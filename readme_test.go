package skillbox_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadmeScriptedUse: the README's exit-code table holds for the binary
// its quick start tells scripts to build, and its claim about `go run`
// (every failure is exit status 1) is true.
func TestReadmeScriptedUse(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	var build []string
	for _, line := range strings.Split(string(readme), "\n") {
		if cmd, ok := strings.CutPrefix(line, "    go build "); ok {
			cmd, _, _ = strings.Cut(cmd, " && ")
			build = strings.Fields(cmd)
			break
		}
	}
	if len(build) < 3 || build[0] != "-o" || build[2] != "./cmd/skillbox" {
		t.Fatalf("the README's quick start has no `go build -o skillbox ./cmd/skillbox` for scripted use (found %q)", build)
	}
	if !strings.Contains(string(readme), "| `invalid`, `not_found` | 2 |") {
		t.Fatal("the README's exit-code table no longer maps invalid to 2")
	}
	bin := filepath.Join(t.TempDir(), build[1])
	args := append([]string{"build", "-o", bin}, build[2:]...)
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		t.Fatalf("go %v: %v\n%s", args, err, out)
	}
	exitCode := func(cmd *exec.Cmd) int {
		t.Helper()
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("%v: %v", cmd.Args, err)
		}
		return cmd.ProcessState.ExitCode()
	}
	// `run` without a skill is a usage error: invalid, exit 2.
	if code := exitCode(exec.Command(bin, "run")); code != 2 {
		t.Errorf("built binary: `skillbox run` exited %d, the table says 2", code)
	}
	if code := exitCode(exec.Command("go", "run", "./cmd/skillbox", "run")); code != 1 {
		t.Errorf("`go run ./cmd/skillbox run` exited %d; the README says go run turns every failure into 1", code)
	}
}
