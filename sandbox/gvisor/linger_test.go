//go:build linux

package gvisor_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/internal/proctest"
	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/sandbox/sandboxtest"
)

// ownChildren returns this test process's child processes, each with its
// start time (so that a pid taken by another process later is not it).
func ownChildren() map[int]string {
	out := map[int]string{}
	files, _ := filepath.Glob("/proc/self/task/*/children")
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, f := range strings.Fields(string(b)) {
			pid, _ := strconv.Atoi(f)
			if st := proctest.StartTime(pid); st != "" {
				out[pid] = st
			}
		}
	}
	return out
}

// TestCallEndsWithItsReply: a sandbox whose skill replaced the harness's
// exit (os._exit and the harness's own binding of it) with a sleep does
// not run on after its call: its runsc is gone well before the 5 s a
// sandbox whose harness replied used to get to end by itself.
func TestCallEndsWithItsReply(t *testing.T) {
	d := driver(t)
	body := `        import time, __main__
        def linger(code=0):
            time.sleep(60)
        os._exit = linger
        __main__._exit = linger
        return {"ok": True}`
	spec := sandboxtest.SpecFor(bundle(t, body), sandboxtest.Options{Limits: sandbox.Limits{Timeout: 30 * time.Second}})
	sb, err := d.Open(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	before := ownChildren()
	if _, err := sb.Call(context.Background(), sandbox.Request{Params: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	ended := time.Now()
	left := ownChildren()
	for pid, st := range before {
		if left[pid] == st {
			delete(left, pid)
		}
	}
	// A generous bound against a loaded machine, well under the 5 s.
	for pid, st := range left {
		for proctest.StartTime(pid) == st {
			if time.Since(ended) > 2500*time.Millisecond {
				t.Fatalf("the call's process %d still runs %v after the call returned", pid, time.Since(ended).Round(time.Millisecond))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
