package netns

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A process Start starts sees loopback only and reaches the listener
// there, after Start returned.
func TestStart(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("a network namespace of its own needs root here")
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	// The process outlives Start's return (the sleep) and still reaches
	// the listener of its namespace.
	cmd := exec.Command(bash, "-c", "sleep 0.5; while read -r l; do echo \"$l\"; done < /proc/net/dev; echo hello > /dev/tcp/127.0.0.1/3128")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	keep := make(chan struct{})
	defer close(keep)
	l, err := Start("127.0.0.1:3128", cmd.Start, keep)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan string, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(time.Minute))
		b, _ := io.ReadAll(c)
		got <- string(b)
	}()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the process: %v\n%s", err, out.String())
	}
	if s := <-got; s != "hello\n" {
		t.Errorf("the listener read %q", s)
	}
	var ifaces []string
	for _, line := range strings.Split(out.String(), "\n") {
		if name, _, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && !strings.Contains(name, "|") {
			ifaces = append(ifaces, name)
		}
	}
	if len(ifaces) != 1 || ifaces[0] != "lo" {
		t.Errorf("the namespace's interfaces: %v, want lo only\n%s", ifaces, out.String())
	}
}

// Without an address Start listens on nothing: the process sees loopback
// only, and another namespace than the caller's.
func TestStartWithoutListener(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("a network namespace of its own needs root here")
	}
	cmd := exec.Command("readlink", "/proc/self/ns/net")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	keep := make(chan struct{})
	defer close(keep)
	l, err := Start("", cmd.Start, keep)
	if err != nil || l != nil {
		t.Fatalf("Start: %v, %v; want no listener", l, err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the process: %v\n%s", err, out.String())
	}
	// This thread's namespace, not /proc/self's: /proc/self names the
	// process's first thread, which a locked goroutine that entered a new
	// namespace may have left there (Go parks that thread rather than
	// ending it).
	mine, err := os.Readlink("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out.String()); got == "" || got == mine {
		t.Errorf("the process's network namespace is %q, the caller's %q", got, mine)
	}
}
