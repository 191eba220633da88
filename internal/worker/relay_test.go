//go:build linux

package worker

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
)

func relayFrame(ch byte, data string) []byte {
	b := []byte{ch, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], uint32(len(data)))
	return append(b, data...)
}

// The demultiplexer splits the relay's frames into stdout and stderr,
// counts marks once the frames before them are written out, stops at the
// end frame (discarding what follows), and passes anything that is not a
// frame to stderr as it is.
func TestRelayDemux(t *testing.T) {
	tests := []struct {
		name           string
		stream         []byte
		stdout, stderr string
		marks          []string // stdout and stderr when each mark came
	}{
		{"frames", bytes.Join([][]byte{relayFrame(1, "out1 "), relayFrame(2, "err1"), relayFrame(1, "out2"), relayFrame(0, ""), []byte("runsc: after the end")}, nil), "out1 out2", "err1", nil},
		{"eof without end", append(relayFrame(1, "a"), relayFrame(2, "b")...), "a", "b", nil},
		{"junk", append(relayFrame(1, "a"), "runsc: error: boom\n"...), "a", "runsc: error: boom\n", nil},
		{"oversized", append(relayFrame(2, "e"), 1, 0xff, 0xff, 0xff, 0xff, 'x'), "", "e\x01\xff\xff\xff\xffx", nil},
		{"unknown channel", append(relayFrame(7, "zz"), relayFrame(1, "late")...), "", string(relayFrame(7, "zz")) + string(relayFrame(1, "late")), nil},
		{"short frame", relayFrame(1, "abc")[:6], "a", "", nil},
		{"marks", bytes.Join([][]byte{relayFrame(1, "o1"), relayFrame(3, ""), relayFrame(2, "e1"), relayFrame(3, ""), relayFrame(3, ""), relayFrame(0, "")}, nil),
			"o1", "e1", []string{"o1|", "o1|e1", "o1|e1"}},
		{"mark with bytes", append(relayFrame(3, "x"), relayFrame(1, "late")...), "", string(relayFrame(3, "x")) + string(relayFrame(1, "late")), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			ends := 0
			var marks []string
			mark := func() { marks = append(marks, out.String()+"|"+errb.String()) }
			demux(bytes.NewReader(tc.stream), &out, &errb, mark, func() { ends++ })
			if out.String() != tc.stdout || errb.String() != tc.stderr {
				t.Errorf("stdout %q stderr %q, want %q and %q", out.String(), errb.String(), tc.stdout, tc.stderr)
			}
			if !slices.Equal(marks, tc.marks) {
				t.Errorf("marks came with %q, want %q", marks, tc.marks)
			}
			if ends != 1 {
				t.Errorf("end called %d times, want once", ends)
			}
		})
	}
}

// A harness behind the relay, on the host's python with only stdio: the
// protocol works over stdin and stdout, the skill's stdout and stderr
// arrive separately, a session keeps state, and the worker's exit status
// is the harness's.
func TestRelayHarness(t *testing.T) {
	needPython(t)
	bundle := writeBundle(t, map[string]string{"skill.py": `
import os, sys
from skillware.core.base_skill import BaseSkill

n = 0

class Relayed(BaseSkill):
    def execute(self, params):
        global n
        n += 1
        print("to stdout", n)
        sys.stderr.write("to stderr %d\n" % n)
        if params.get("exit"):
            sys.stdout.flush()
            os._exit(params["exit"])
        return {"n": n, "fds": sorted(int(f) for f in os.listdir("/proc/self/fd"))}
`})
	argv := RelayArgv(testPython)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8"}
	cmd.Dir = t.TempDir()
	p, err := StartWith(context.Background(), cmd, 64<<10, StartOptions{Relay: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Init(tctx(t, 20*time.Second), Init{Bundle: bundle, Mode: ModeSession}); err != nil {
		t.Fatalf("init: %v (stderr: %s)", err, p.Stderr.Bytes())
	}
	for i := 1; i <= 2; i++ {
		p.Stdout.Reset()
		p.Stderr.Reset()
		var got struct {
			N   int   `json:"n"`
			FDs []int `json:"fds"`
		}
		if err := json.Unmarshal([]byte(mustCall(t, p, uint64(i), `{}`, nil)), &got); err != nil {
			t.Fatal(err)
		}
		if got.N != i {
			t.Errorf("call %d: n = %d (session state)", i, got.N)
		}
		// The skill's process has stdio and the protocol's private
		// descriptors (requests, replies, the relay's marks; and the one
		// listdir opens), nothing else of the relay's.
		if len(got.FDs) > 7 || len(got.FDs) < 3 || got.FDs[0] != 0 || got.FDs[1] != 1 || got.FDs[2] != 2 {
			t.Errorf("call %d: descriptors %v", i, got.FDs)
		}
		// The relay's mark says when the call's output is all there.
		if err := p.SettleOutput(tctx(t, 10*time.Second)); err != nil {
			t.Fatalf("call %d: no output mark: %v (stdout %q stderr %q)", i, err, p.Stdout.Bytes(), p.Stderr.Bytes())
		}
		wantOut, wantErr := fmt.Sprintf("to stdout %d\n", i), fmt.Sprintf("to stderr %d\n", i)
		if string(p.Stdout.Bytes()) != wantOut || string(p.Stderr.Bytes()) != wantErr {
			t.Errorf("call %d: stdout %q stderr %q, want %q and %q", i, p.Stdout.Bytes(), p.Stderr.Bytes(), wantOut, wantErr)
		}
	}
	_, err = call(t, p, 3, `{"exit": 7}`, nil)
	var se *errdefs.SkillError
	if !errors.As(err, &se) || se.Type != TypeWorkerExited || !strings.Contains(se.Message, "code 7") {
		t.Fatalf("exit 7: %v, want WorkerExited with code 7", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.WaitOutput(ctx); err != nil {
		t.Fatalf("output never completed after the worker exited: %v", err)
	}
}
