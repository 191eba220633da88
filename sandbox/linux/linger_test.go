//go:build linux

package linux

import (
	"bytes"
	"io"
	"os"
	"strconv"
	"testing"

	"github.com/skillbox-dev/skillbox/sandbox"
)

// lingerSkill's "plant" call replaces the harness's way out of its call
// child (os._exit and the harness's own binding of it) with one that
// appends a line to /scratch/alive every 50 ms for 4 s; "look" lists
// /scratch; "files" leaves that many files in /scratch and a sleeping
// process behind, as a skill may.
const lingerSkill = `        import time, subprocess
        op = params.get("op")
        if op == "plant":
            import __main__
            real = os._exit
            def linger(code=0):
                start = time.monotonic()
                while time.monotonic() - start < 4:
                    with open("/scratch/alive", "a") as f:
                        f.write("x\n")
                    time.sleep(0.05)
                real(code)
            open("/scratch/alive", "w").write("x\n")
            os._exit = linger
            __main__._exit = linger
        if op == "files":
            for i in range(int(params["n"])):
                open("/scratch/f%d" % i, "w").close()
            subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return {"scratch": sorted(os.listdir("/scratch"))}`

// onlyZygote returns the pool's one zygote.
func onlyZygote(t *testing.T, sb sandbox.Sandbox) *zygote {
	t.Helper()
	p := sb.(*box).run.(*pool)
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.all) != 1 {
		t.Fatalf("want 1 zygote, have %d", len(p.all))
	}
	for z := range p.all {
		return z
	}
	return nil
}

// TestZygoteCallEndsWithItsReply: a call child whose skill replaced the
// harness's exit does not run on after its call: the zygote's jail is
// killed within childExitGrace, so the skill's leftover code, which would
// write to /scratch/alive for 4 s, got to write only a little, and the
// next call runs, in a fresh jail with an empty /scratch.
func TestZygoteCallEndsWithItsReply(t *testing.T) {
	sb := openBox(t, Options{Exec: ExecZygote, PoolSize: 1, MinIdle: 1}, sandbox.Spec{BundleDir: bundle(t, lingerSkill)})
	z := onlyZygote(t, sb)
	if _, err := call(t, sb, map[string]any{"op": "plant"}); err != nil {
		t.Fatal(err)
	}
	// The file as the skill's leftover code goes on writing it: it stays
	// readable through this descriptor once the jail is gone.
	alive, err := os.Open("/proc/" + strconv.Itoa(z.j.Cmd.Process.Pid) + "/root/scratch/alive")
	if err != nil {
		// Only a jail already killed leaves nothing to open.
		t.Logf("the jail is already gone: %v", err)
	} else {
		defer alive.Close()
	}
	res, err := call(t, sb, map[string]any{"op": "look"})
	if err != nil {
		t.Fatalf("the call after the lingering one: %v", err)
	}
	if got := value(t, res)["scratch"]; len(got.([]any)) != 0 {
		t.Errorf("the next call's /scratch holds %v", got)
	}
	if alive == nil {
		return
	}
	b, err := io.ReadAll(alive)
	if err != nil {
		t.Fatal(err)
	}
	// 80 lines when it runs its 4 s; a generous bound against a loaded
	// machine: it was killed within 2 s.
	if n := bytes.Count(b, []byte("\n")); n >= 40 {
		t.Errorf("the skill's code ran on after its call: it wrote %d lines, 50 ms apart", n)
	}
}

// TestZygoteSlowCleanupKeepsZygote: a call that leaves many files and a
// process behind takes its zygote's cleanup longer than childExitGrace;
// that is the zygote's own code, waited for, and the zygote serves on.
func TestZygoteSlowCleanupKeepsZygote(t *testing.T) {
	sb := openBox(t, Options{Exec: ExecZygote, PoolSize: 1, MinIdle: 1}, sandbox.Spec{BundleDir: bundle(t, lingerSkill)})
	z := onlyZygote(t, sb)
	for _, n := range []int{0, 20000, 0} {
		res, err := call(t, sb, map[string]any{"op": "files", "n": n})
		if err != nil {
			t.Fatalf("files %d: %v", n, err)
		}
		if got := value(t, res)["scratch"].([]any); len(got) != n {
			t.Fatalf("files %d: /scratch holds %d entries", n, len(got))
		}
	}
	// The last call's cleanup is done once another call ran.
	if _, err := call(t, sb, map[string]any{"op": "look"}); err != nil {
		t.Fatal(err)
	}
	if got := onlyZygote(t, sb); got != z || !z.usable() {
		t.Errorf("the zygote was replaced (%p, then %p, usable %v)", z, got, z.usable())
	}
}
