package worker

import (
	_ "embed"
	"encoding/binary"
	"io"
	"os"
	"os/exec"
)

//go:embed relay.py
var relaySource string

// RelayArgv returns the argument vector that starts the harness behind the
// relay (relay.py), for a sandbox that hands the worker descriptors 0, 1
// and 2 only (gVisor's runsc has no --preserve-fds): requests on stdin,
// replies on stdout, the skill's stdout and stderr multiplexed on stderr.
// Start it with StartOptions.Relay. The relay stays the sandbox's first
// process and forks the harness, which runs as with Argv.
func RelayArgv(python string) []string {
	return []string{python, "-I", "-S", "-B", "-c", relaySource + "\n" + Harness(), "skillbox-worker"}
}

// Relay channels: the byte that heads each frame of the relay's stream.
const (
	relayEnd    = 0
	relayStdout = 1
	relayStderr = 2
	// relayMark, empty: the relay has forwarded what the skill's stdout
	// and stderr held when the harness asked for a mark.
	relayMark = 3
	// relayMaxFrame is the largest frame the relay sends (one read).
	relayMaxFrame = 64 << 10
)

// demux reads the relay's stream from r into stdout and stderr until its
// end frame, then discards the rest until EOF (the sandbox's runtime may
// still write there). Anything that is not a well-formed frame — the
// runtime's own error messages, or a skill that forged bytes on the
// relay's descriptor — goes to stderr as it is, to EOF. mark is called
// for each mark frame, after the frames before it were written out. end
// is called once, when the output is complete (end frame, junk or EOF).
func demux(r io.Reader, stdout, stderr io.Writer, mark, end func()) {
	var hdr [5]byte
	buf := make([]byte, relayMaxFrame)
	for {
		n, err := io.ReadFull(r, hdr[:])
		if err != nil {
			stderr.Write(hdr[:n])
			break
		}
		size := binary.BigEndian.Uint32(hdr[1:])
		var w io.Writer
		switch hdr[0] {
		case relayStdout:
			w = stdout
		case relayStderr:
			w = stderr
		}
		if hdr[0] == relayEnd && size == 0 {
			end()
			io.Copy(io.Discard, r)
			return
		}
		if hdr[0] == relayMark && size == 0 {
			mark()
			continue
		}
		if w == nil || size > relayMaxFrame {
			stderr.Write(hdr[:])
			io.Copy(stderr, r)
			break
		}
		n, err = io.ReadFull(r, buf[:size])
		w.Write(buf[:n])
		if err != nil {
			break
		}
	}
	end()
}

// relayPipes gives cmd the relay's descriptors: the protocol pipes' child
// ends as stdin and stdout, and a pipe of ours as stderr, whose read end
// is returned (for demux).
func relayPipes(cmd *exec.Cmd, child []*os.File) (mux, muxW *os.File, err error) {
	mux, muxW, err = os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = child[0], child[1], muxW
	return mux, muxW, nil
}
