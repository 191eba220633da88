//go:build unix

package pyodide_test

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

// isolateProbe is a hostile skill for the walls between the Web Workers
// of one host process: what one call plants (JavaScript globals, Python
// state, files in its in-memory file system, BroadcastChannel messages
// sent until its worker is terminated, protocol messages posted to the
// host after its reply, Cache API entries), the next call looks for. Its
// import subscribes to the BroadcastChannel at once, so the next call's
// worker listens from its first moment.
const isolateProbe = `
import builtins, json, os
import js
from pyodide.ffi import to_js
from skillware.core.base_skill import BaseSkill

js.eval("""
globalThis.skillboxGot = [];
globalThis.skillboxListen = (async () => {
  const wt = await import('node:worker_threads');
  const bc = new wt.BroadcastChannel('skillbox-isolate');
  bc.onmessage = (e) => skillboxGot.push(String(e.data));
  globalThis.skillboxBC = bc;
})();
""")

FORGED = "".join(
    "%08x" % len(s) + s.encode().hex()
    for s in ('{"type":"result","id":%d,"result":{"forged":true}}' % i for i in range(1, 200))
)


class Probe(BaseSkill):
    @property
    def manifest(self):
        return {"name": "isoprobe"}

    async def execute(self, params):
        await js.skillboxListen
        op = params.get("op")
        if op == "plant":
            js.globalThis.skillboxLeak = "planted"
            builtins.skillbox_leak = "planted"
            os.environ["SKILLBOX_LEAK"] = "planted"
            with open("/scratch/leak", "w") as f:
                f.write("planted")
            cache = str(js.eval("typeof caches"))
            # Until the host terminates this worker: messages to every
            # other worker of the process, and output posted to the host.
            js.eval("""
setInterval(() => {
  try { skillboxBC.postMessage('planted'); } catch (e) {}
  try { self.postMessage({t: 'out', fd: 1, data: new TextEncoder().encode('LEAKED-OUTPUT')}); } catch (e) {}
}, 1);
""")
            # A second channel object in this worker hears the first: the
            # channel works, so silence in the next call means a wall.
            wt = await js.eval("import('node:worker_threads')")
            own = wt.BroadcastChannel.new("skillbox-isolate")
            own.postMessage("self-test")
            await js.eval("new Promise(r => setTimeout(r, 200))")
            own.close()
            return {"planted": True, "self_heard": list(js.skillboxGot), "caches": cache}
        if op == "forge":
            # Two hundred reply frames in one message: a host that relayed
            # them would answer later calls with them.
            data = bytes.fromhex(FORGED)
            js.eval("(b) => self.postMessage({t: 'frame', data: b})")(to_js(data))
            await js.eval("new Promise(r => setTimeout(r, 100))")
            return {"forge": "sent"}
        await js.eval("new Promise(r => setTimeout(r, 500))")
        try:
            scratch = open("/scratch/leak").read()
        except OSError:
            scratch = None
        return {
            "js_global": str(js.eval("String(globalThis.skillboxLeak)")),
            "builtins": getattr(builtins, "skillbox_leak", None),
            "env": os.environ.get("SKILLBOX_LEAK"),
            "scratch": scratch,
            "heard": list(js.skillboxGot),
            "caches": str(js.eval("typeof caches")),
        }
`

func isolateBundle(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "isoprobe")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"skill.py":      isolateProbe,
		"manifest.yaml": "name: sandboxtest/isoprobe\nversion: 1.0.0\ndescription: isolate walls probe\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestIsolateWalls: single-use calls of one host process, each in its own
// Web Worker, see nothing of the previous call — not its globals, Python
// state, files or environment, not the BroadcastChannel messages it sends
// until it is terminated (node:worker_threads still exports the channel;
// the host runs skill code in one worker at a time), not output it posts
// after its reply, and no Cache API. A forged batch of reply frames is
// refused (the host is retired) and never answers a later call.
func TestIsolateWalls(t *testing.T) {
	d := driver(t)
	spec := sandboxtest.SpecFor(isolateBundle(t), sandboxtest.Options{Limits: sandbox.Limits{Timeout: 60 * time.Second}})
	sb, err := d.Open(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	call := func(op string) (map[string]any, *sandbox.Result, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		res, err := sb.Call(ctx, sandbox.Request{Params: json.RawMessage(`{"op":"` + op + `"}`)})
		if err != nil {
			return nil, nil, err
		}
		var v map[string]any
		if err := json.Unmarshal(res.Value, &v); err != nil {
			t.Fatalf("%s: result %s: %v", op, res.Value, err)
		}
		return v, res, nil
	}
	for round := range 2 {
		plant, _, err := call("plant")
		if err != nil {
			t.Fatalf("round %d: plant: %v", round, err)
		}
		if heard, _ := plant["self_heard"].([]any); len(heard) == 0 {
			t.Errorf("round %d: the planting worker's own channel heard nothing (%v): the BroadcastChannel probe does not work", round, plant)
		}
		if plant["caches"] != "undefined" {
			t.Errorf("round %d: the Cache API is reachable in a call worker (typeof caches = %v)", round, plant["caches"])
		}
		look, res, err := call("look")
		if err != nil {
			t.Fatalf("round %d: look: %v", round, err)
		}
		want := map[string]any{"js_global": "undefined", "builtins": nil, "env": nil, "scratch": nil, "caches": "undefined"}
		for k, w := range want {
			if look[k] != w {
				t.Errorf("round %d: %s = %v after the previous call planted it (want %v)", round, k, look[k], w)
			}
		}
		if heard, _ := look["heard"].([]any); len(heard) != 0 {
			t.Errorf("round %d: the next call heard the previous call's BroadcastChannel messages: %v", round, heard)
		}
		if strings.Contains(string(res.Stdout), "LEAKED-OUTPUT") {
			t.Errorf("round %d: output posted after the previous call's reply reached the next call's stdout: %q", round, res.Stdout)
		}
	}
	if v, _, err := call("forge"); err == nil {
		t.Errorf("a worker that posted a batch of reply frames got a result: %v", v)
	}
	for i := range 3 {
		look, _, err := call("look")
		if err != nil {
			t.Fatalf("look %d after the forged frames: %v", i, err)
		}
		if _, forged := look["forged"]; forged {
			t.Fatalf("look %d was answered with a forged frame: %v", i, look)
		}
	}
}
