//go:build linux

package jail

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// hostEnv, set in a re-executed test binary, makes TestJailDiesWithHost
// play the host: it starts a jail carrying the variable's value as a
// marker, prints the jail's pid and waits to be killed.
const hostEnv = "SKILLBOX_TEST_JAIL_HOST"

// TestJailDiesWithHost: a jail whose host process is killed with SIGKILL
// (nothing of skillbox runs after it) is gone soon after, with every
// process in it, although the init stage changed its ids (which clears a
// parent-death signal set before).
func TestJailDiesWithHost(t *testing.T) {
	if marker := os.Getenv(hostEnv); marker != "" {
		playHost(t, marker)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: jails are tested as root (CI runs as root)")
	}
	if err := Usable(); err != nil {
		t.Skipf("host cannot build jails: %v", err)
	}
	marker := fmt.Sprintf("jail-host-%d-%d", os.Getpid(), time.Now().UnixNano())
	host := exec.Command(os.Args[0], "-test.run=^TestJailDiesWithHost$", "-test.count=1")
	host.Env = append(os.Environ(), hostEnv+"="+marker)
	out, err := host.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := host.StdinPipe(); err != nil { // held open until the kill
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	host.Stderr = &stderr
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		host.Process.Kill()
		host.Wait()
		for _, pid := range marked(marker) {
			syscall.Kill(pid, syscall.SIGKILL) // ours: they carry the marker
		}
	}()
	pid := readJailPid(t, out, host, &stderr)
	if got := marked(marker); len(got) < 2 {
		t.Fatalf("the jail (pid %d) runs %v with the marker, want the shell and its subshell", pid, got)
	}
	if err := host.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	host.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := marked(marker)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("10 s after its host was killed, the jail's processes %v still run", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readJailPid reads the pid the host prints once its jail runs.
func readJailPid(t *testing.T, out io.Reader, host *exec.Cmd, stderr *bytes.Buffer) int {
	t.Helper()
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- s
	}()
	select {
	case s := <-line:
		pid, err := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(s), "jail="))
		if err != nil || !strings.HasPrefix(s, "jail=") {
			host.Process.Kill()
			host.Wait()
			t.Fatalf("host said %q: %s", s, stderr.Bytes())
		}
		return pid
	case <-time.After(60 * time.Second):
		t.Fatal("the host did not start its jail within 60 s")
	}
	return 0
}

// playHost starts a jail whose shell runs a subshell, both carrying marker in
// their environment, prints the jail's pid and blocks until killed (or its
// stdin ends).
func playHost(t *testing.T, marker string) {
	spec := Spec{Root: shell(t), Env: map[string]string{"JAIL_MARKER": marker}}
	BestEffort(&spec)
	j, err := New(spec)
	if err != nil {
		t.Fatal(err)
	}
	// The jail holds both ends of a pipe, so its reads never end: the
	// shell and a subshell (a second process in the jail) block on it.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", "(read x <&3) & read x <&3; exit 0")
	cmd.ExtraFiles = []*os.File{r, w}
	launch, _ := j.Launch(context.Background(), LaunchOptions{})
	if err := launch(cmd); err != nil {
		t.Fatalf("launch: %v", err)
	}
	r.Close()
	w.Close()
	// The subshell may take a moment to start: wait for it.
	for len(marked(marker)) < 2 {
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Printf("jail=%d\n", cmd.Process.Pid)
	// Until killed: the test holds stdin open.
	io.Copy(io.Discard, os.Stdin)
}

// marked lists the pids of the processes whose environment holds
// JAIL_MARKER=marker.
func marked(marker string) []int {
	want := []byte("JAIL_MARKER=" + marker + "\x00")
	envs, _ := filepath.Glob("/proc/[0-9]*/environ")
	var pids []int
	for _, f := range envs {
		b, err := os.ReadFile(f)
		if err != nil || !bytes.Contains(b, want) {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(f))); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}
