package cli

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// openTerminal opens a pseudo-terminal pair without output processing
// (no "\n" to "\r\n"), so that what the terminal gets is what was written.
func openTerminal(t *testing.T) (master, tty *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	tio, err := unix.IoctlGetTermios(int(s.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	tio.Oflag &^= unix.OPOST
	if err := unix.IoctlSetTermios(int(s.Fd()), unix.TCSETS, tio); err != nil {
		t.Fatal(err)
	}
	return m, s
}

// runOnTerminal runs the CLI with standard output on a terminal and
// returns what the terminal got.
func (h *harness) runOnTerminal(args ...string) (code int, shown, stderr string) {
	h.t.Helper()
	master, tty := openTerminal(h.t)
	got := make(chan string)
	go func() {
		var b bytes.Buffer
		io.Copy(&b, master) // until the terminal side is closed (EIO)
		got <- b.String()
	}()
	var errb bytes.Buffer
	code = RunContext(context.Background(), args, strings.NewReader(""), tty, &errb, h.cliEnv())
	tty.Close()
	return code, <-got, errb.String()
}

// On a terminal, standard output shows a skill's escape sequences rather
// than acting on them: its manifest cannot rewrite or hide the lines of
// the review the operator reads before trusting it, nor of inspect and
// list. Into a pipe the same commands write the manifest's exact text.
func TestTerminalStdoutShowsEscapes(t *testing.T) {
	h := newHarness(t)
	h.hostileText(filepath.Join(h.project, "skills"))
	for _, args := range [][]string{{"inspect", "test/hostile_text"}, {"list"}} {
		code, shown, stderr := h.runOnTerminal(args...)
		if code != 0 || !strings.Contains(shown, "hostile_text") {
			t.Fatalf("%v: exit %d, shown %q, stderr %s", args, code, shown, stderr)
		}
		assertTerminalSafe(t, shown)
		if !strings.Contains(shown, `1.0\u001b[1A\u001b[2K`) || !strings.Contains(shown, `Counts words.\u001b[8m`) {
			t.Errorf("%v: shown:\n%s", args, shown)
		}
		if o := h.run(args...); !strings.Contains(o.stdout, "1.0\x1b[1A\x1b[2K") {
			t.Errorf("%v into a pipe: %q", args, o.stdout)
		}
		if args[0] == "list" {
			// The columns line up with what the terminal shows.
			lines := strings.Split(shown, "\n")
			col := strings.Index(lines[0], "DESCRIPTION")
			for _, l := range lines {
				if strings.HasPrefix(l, "test/hostile_text ") && strings.Index(l, "Counts words.") != col {
					t.Errorf("list on a terminal: the description is not in its column:\n%s", shown)
				}
			}
		}
	}
	_, shown, _ := h.runOnTerminal("run", "test/hostile_text", "--backend", "process")
	assertTerminalSafe(t, shown)
	if !strings.Contains(shown, `"x": "\u001b[31m\u202e"`) {
		t.Errorf("result shown:\n%s", shown)
	}

	h.hostileText(h.external())
	_, shown, _ = h.runOnTerminal("trust", "test/hostile_text")
	assertTerminalSafe(t, shown)
	if !strings.Contains(shown, `issuer: Acme\u001b]0;owned\u0007\u202e`) || !strings.Contains(shown, "It requests:") {
		t.Errorf("review shown:\n%s", shown)
	}
}
