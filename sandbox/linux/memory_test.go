//go:build linux

package linux

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/cgroup"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// memoryModes are the ways a jail starts: zygote with and without a
// pre-forked child, cold, prestart, and session.
var memoryModes = []struct {
	name string
	opts Options
	mode sandbox.Mode
}{
	{"zygote", Options{Exec: ExecZygote}, ""},
	{"zygote-noprefork", Options{Exec: ExecZygote, NoPrefork: true}, ""},
	{"auto", Options{}, ""},
	{"cold", Options{Exec: ExecCold}, ""},
	{"prestart", Options{Exec: ExecPrestart}, ""},
	{"session", Options{}, sandbox.ModeSession},
}

// TestMemoryAnyValue: every memory limit gives either invalid (below
// sandbox.MinMemory, refused before any jail starts) or a result or a
// memory limit error — never skillbox killed (the launching thread was
// charged to the jail's group while it forked: --memory 1k killed the CLI
// with exit 137), an internal error, or a dead worker reported as the
// skill's failure (4 and 8 MiB did that).
func TestMemoryAnyValue(t *testing.T) {
	requireRoot(t)
	if _, err := os.Stat("/proc/self/exe"); err != nil {
		t.Skip(err)
	}
	small := bundle(t, `        return {"ok": True}`)
	hungry := bundle(t, `        x = []
        while True:
            x.append(bytearray(4 << 20))`)
	for _, m := range memoryModes {
		t.Run(m.name, func(t *testing.T) {
			for _, mem := range []int64{1, 4096, 1 << 20, 8 << 20, sandbox.MinMemory - 1} {
				_, err := New(m.opts).Open(context.Background(), sandbox.Spec{SkillID: "test/mem", BundleDir: small, Mode: m.mode,
					Limits: sandbox.Limits{Memory: mem}})
				if errdefs.KindOf(err) != errdefs.Invalid || !strings.Contains(err.Error(), "floor") {
					t.Errorf("memory %d: %v, want invalid naming the floor", mem, err)
				}
			}
			for _, mem := range []int64{sandbox.MinMemory, sandbox.MinMemory + 1<<20, 18 << 20, 20 << 20, 24 << 20, 32 << 20} {
				for _, dir := range []string{small, hungry} {
					err := openAndCall(t, m.opts, sandbox.Spec{SkillID: "test/mem", BundleDir: dir, Mode: m.mode,
						Limits: sandbox.Limits{Memory: mem, Timeout: 20 * time.Second}})
					var le *errdefs.LimitError
					switch {
					case err == nil && dir == hungry:
						t.Errorf("memory %d: the hungry skill returned", mem)
					case err != nil && (!errors.As(err, &le) || le.Resource != "memory"):
						t.Errorf("memory %d: %v (kind %s), want a result or a memory limit error", mem, err, errdefs.KindOf(err))
					}
				}
			}
		})
	}
}

// openAndCall opens a sandbox for spec, makes one call and closes it; an
// error from Open or the call is returned.
func openAndCall(t *testing.T, opts Options, spec sandbox.Spec) error {
	t.Helper()
	sb, err := New(opts).Open(context.Background(), spec)
	if err != nil {
		return err
	}
	defer sb.Close()
	_, err = call(t, sb, nil)
	return err
}

// TestNoGroupOutlivesClose: when Close returns, the cgroups of every jail
// the sandbox started are gone — also the jail of a call that timed out,
// which is destroyed in the background (a CLI exiting right after a
// timeout left it behind).
func TestNoGroupOutlivesClose(t *testing.T) {
	requireRoot(t)
	h, err := cgroup.Detect()
	if err != nil {
		t.Skip(err)
	}
	sleepy := bundle(t, `        import time
        time.sleep(30)`)
	for _, m := range memoryModes {
		t.Run(m.name, func(t *testing.T) {
			first := jailSeq.Load()
			sb := openBox(t, m.opts, sandbox.Spec{BundleDir: sleepy, Mode: m.mode, Limits: sandbox.Limits{Timeout: 300 * time.Millisecond}})
			if _, err := call(t, sb, nil); errdefs.KindOf(err) != errdefs.Timeout {
				t.Fatalf("got %v, want a timeout", err)
			}
			sb.Close()
			if left := ownGroups(h, first); len(left) > 0 {
				t.Errorf("groups left after Close: %v", left)
			}
		})
	}
}

// ownGroups lists the jail groups of this process numbered after first.
func ownGroups(h *cgroup.Host, first uint64) []string {
	var out []string
	prefix := strconv.Itoa(os.Getpid()) + "-"
	for _, c := range []string{cgroup.Memory, cgroup.Pids, cgroup.CPU} {
		v, base := h.Where(c)
		if v == 0 {
			continue
		}
		ents, _ := os.ReadDir(filepath.Join(base, cgroup.Parent))
		for _, e := range ents {
			n, ok := strings.CutPrefix(e.Name(), prefix)
			if seq, err := strconv.ParseUint(n, 10, 64); ok && err == nil && seq > first {
				out = append(out, filepath.Join(base, cgroup.Parent, e.Name()))
			}
		}
	}
	return out
}

// TestMaxRSSPerCall: a call's Usage.MaxRSS is the jail's peak memory
// during that call (its child's, for a zygote), not since the jail
// started: after a call that touched 160 MiB, the next small call of the
// same zygote or session reports far less (it used to report the first
// call's peak).
func TestMaxRSSPerCall(t *testing.T) {
	dir := bundle(t, `        x = bytearray(params.get("mb", 0) << 20)
        for i in range(0, len(x), 4096):
            x[i] = 1
        return {"n": len(x)}`)
	for _, m := range memoryModes {
		if m.opts.Exec == ExecCold || m.opts.Exec == ExecPrestart {
			continue // a jail per call: its whole peak is the call's
		}
		t.Run(m.name, func(t *testing.T) {
			sb := openBox(t, m.opts, sandbox.Spec{SkillID: "test/rss", BundleDir: dir, Mode: m.mode,
				Limits: sandbox.Limits{Memory: 512 << 20, Timeout: 20 * time.Second}})
			call := func(mb int) int64 {
				t.Helper()
				res, err := sb.Call(context.Background(), sandbox.Request{Params: []byte(`{"mb":` + strconv.Itoa(mb) + `}`)})
				if err != nil {
					t.Fatalf("call of %d MiB: %v", mb, err)
				}
				return res.Usage.MaxRSS
			}
			big := call(160)
			if big < 160<<20 {
				t.Fatalf("a call that touched 160 MiB reports a peak of %d MiB", big>>20)
			}
			small := call(0)
			if small <= 0 || small >= 100<<20 {
				t.Fatalf("the next call, touching nothing, reports a peak of %d bytes (%d MiB): want the jail's peak during that call", small, small>>20)
			}
			t.Logf("peaks: %d MiB, then %d MiB", big>>20, small>>20)
		})
	}
}
