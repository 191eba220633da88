//go:build unix

package pyodide

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/sandbox/sandboxtest"
)

// hostStateProbe changes what a call worker shares with its host process:
// "plant" with "how" chdir moves the process's working directory to "dir"
// (the Pyodide folder: readable, so Deno.chdir is allowed there); with
// another "how" it spins 300 ms once its reply is posted and then writes a
// secret straight to the process's fds 1 and 2 (Deno.stdout, node:fs or
// node:process, none of them the host's output relay), and lets its worker
// end. "look" prints a line to each and reports the working directory.
const hostStateProbe = `
import sys
import js
from skillware.core.base_skill import BaseSkill

PLANT = """async (s, how, dir) => {
  const fs = await import('node:fs');
  const proc = (await import('node:process')).default;
  if (how === 'chdir') Deno.chdir(dir);
  const enc = (x) => new TextEncoder().encode(x);
  const write = {
    deno: (fd, x) => (fd === 1 ? Deno.stdout : Deno.stderr).writeSync(enc(x)),
    fs: (fd, x) => fs.writeSync(fd, x),
    process: (fd, x) => (fd === 1 ? proc.stdout : proc.stderr).write(x),
  }[how] ?? (() => 0);
  const orig = self.postMessage.bind(self);
  self.postMessage = (m, t) => {
    orig(m, t);
    if (m && m.t === 'frame') {
      const t0 = Date.now();
      while (Date.now() - t0 < 300) {}
      write(1, 'STDOUT-' + s + '\\n');
      write(2, 'STDERR-' + s + '\\n');
    }
  };
  return Deno.cwd();
}"""


class Probe(BaseSkill):
    @property
    def manifest(self):
        return {"name": "hoststate"}

    async def execute(self, params):
        if params["op"] == "plant":
            cwd = await js.eval(PLANT)(params["secret"], params["how"], params["dir"])
            return {"cwd": str(cwd)}
        print("look")
        print("look", file=sys.stderr)
        return {"cwd": str(js.eval("Deno.cwd()")), "pid": int(js.eval("Deno.pid"))}
`

// TestHostStateWalls: what a call leaves in its host process reaches no
// later call, with the linux jail and without. Output its worker writes to
// the process's fds 1 and 2 after its reply (Deno.stdout, node:fs,
// node:process) is not in the next call's stdout or stderr (it was, 3 of
// 3), and a working directory it changed is not the next call's (it was:
// Deno.chdir reaches the whole process). A call that leaves nothing
// behind leaves its host serving (checked where the pid tells hosts apart:
// in the jail Deno is always pid 1).
func TestHostStateWalls(t *testing.T) {
	testDriver(t)
	t.Run("jailed", func(t *testing.T) { testHostState(t, New(Options{}), false) })
	t.Run("unjailed", func(t *testing.T) {
		testHostState(t, newTestDriver(seams{noJail: "test: unjailed"}), true)
	})
}

func testHostState(t *testing.T, d *Driver, pids bool) {
	dir := filepath.Join(t.TempDir(), "hoststate")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"skill.py":      hostStateProbe,
		"manifest.yaml": "name: sandboxtest/hoststate\nversion: 1.0.0\ndescription: host state probe\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	spec := sandboxtest.SpecFor(dir, sandboxtest.Options{Limits: sandbox.Limits{Timeout: 60 * time.Second}})
	sb, err := d.Open(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	f, err := d.runtime(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var pid int // the host's, as the last call saw it
	call := func(params string) (string, *sandbox.Result) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		res, err := sb.Call(ctx, sandbox.Request{Params: json.RawMessage(params)})
		if err != nil {
			t.Fatalf("call %s: %v", params, err)
		}
		var v struct {
			Cwd string
			Pid int
		}
		if err := json.Unmarshal(res.Value, &v); err != nil || v.Cwd == "" {
			t.Fatalf("call %s: result %s (%v)", params, res.Value, err)
		}
		pid = v.Pid
		return v.Cwd, res
	}
	start, _ := call(`{"op":"look"}`)
	first := pid
	for i := range 2 {
		cwd, res := call(`{"op":"look"}`)
		if cwd != start || string(res.Stdout) != "look\n" || string(res.Stderr) != "look\n" {
			t.Fatalf("plain call %d: working directory %q, stdout %q, stderr %q; want %q and one line each", i, cwd, res.Stdout, res.Stderr, start)
		}
		if pids && pid != first {
			t.Fatalf("plain call %d ran in host %d, not %d: a host whose calls left nothing behind was retired", i, pid, first)
		}
	}
	for round, how := range []string{"deno", "fs", "process", "chdir"} {
		secret := "SECRET-" + how
		moved, _ := call(`{"op":"plant","secret":"` + secret + `","how":"` + how + `","dir":"` + f.rt.Pyodide + `"}`)
		if how == "chdir" && moved == start {
			t.Fatalf("round %d: Deno.chdir left the working directory at %q: the probe does not work", round, moved)
		}
		cwd, res := call(`{"op":"look"}`)
		if cwd != start {
			t.Errorf("round %d: the next call's working directory is %q, where the previous call moved it (want %q)", round, cwd, start)
		}
		if string(res.Stdout) != "look\n" || string(res.Stderr) != "look\n" {
			t.Errorf("round %d (%s): the next call's stdout %q, stderr %q; want its own line in each, nothing of the previous call's %s", round, how, res.Stdout, res.Stderr, secret)
		}
	}
}
