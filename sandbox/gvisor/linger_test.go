//go:build linux

package gvisor_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/sandbox/sandboxtest"
)

// ownChildren returns this test process's child processes, each with its
// start time (so that a pid taken by another process later is not it).
func ownChildren() map[string]string {
	out := map[string]string{}
	files, _ := filepath.Glob("/proc/self/task/*/children")
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, pid := range strings.Fields(string(b)) {
			if st := startTime(pid); st != "" {
				out[pid] = st
			}
		}
	}
	return out
}

// startTime is field 22 of /proc/<pid>/stat, or "" when pid is gone (or a
// zombie, whose stat no longer counts).
func startTime(pid string) string {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return ""
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 20 || f[0] == "Z" {
		return ""
	}
	return f[19]
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
		for startTime(pid) == st {
			if time.Since(ended) > 2500*time.Millisecond {
				t.Fatalf("the call's process %s still runs %v after the call returned", pid, time.Since(ended).Round(time.Millisecond))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
