//go:build unix

package pyodide

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

// renameProbe: "plant" holds a Web Lock named after the secret (Web Locks
// are shared by every worker of a Deno process), renames its worker's
// thread (node:process's title setter renames the calling thread, no
// permission needed) and spins once its reply is posted, a loop Deno's
// terminate() cannot stop; with "how" nested it starts a nested Worker
// (a data: URL, with its permissions) that takes the lock, names its
// thread as Deno names its Tokio threads and spins, and the call returns
// at once (its worker is terminated; the nested one is not stopped).
// "look" reports the locks held in its process.
const renameProbe = `
import js
from skillware.core.base_skill import BaseSkill

PLANT = """async (secret, how) => {
  const proc = (await import('node:process')).default;
  if (how === 'nested') {
    const src = "const proc = (await import('node:process')).default;" +
      "navigator.locks.request('LEAK-" + secret + "', () => {" +
      "  proc.title = 'tokio-runtime-w'; self.postMessage('held');" +
      "  const t0 = Date.now(); while (Date.now() - t0 < 60000) {}" +
      "});";
    const w = new Worker('data:text/javascript,' + encodeURIComponent(src), { type: 'module' });
    await new Promise((held, failed) => { w.onmessage = held; w.onerror = (e) => failed(new Error(e.message)); });
    return;
  }
  await new Promise((granted) => navigator.locks.request('LEAK-' + secret, () => { granted(); return new Promise(() => {}); }));
  if (how === 'title') proc.title = 'skill-thread';
  const orig = self.postMessage.bind(self);
  self.postMessage = (m, t) => {
    orig(m, t);
    if (m && m.t === 'frame') { const t0 = Date.now(); while (Date.now() - t0 < 60000) {} }
  };
}"""


class Probe(BaseSkill):
    @property
    def manifest(self):
        return {"name": "renameprobe"}

    async def execute(self, params):
        if params["op"] == "plant":
            await js.eval(PLANT)(params["secret"], params["how"])
            return {"held": []}
        q = await js.navigator.locks.query()
        return {"held": [str(l.name) for l in q.held]}
`

// TestRenamedWorkerStillEnds: a call's worker that renames its thread
// (process.title) and keeps running after its reply is still seen as not
// ended: its host is retired, and the next call's skill never runs beside
// it. It was counted by its thread's name, so the renamed worker looked
// ended and the next call, in the same host, saw its Web Lock. A nested
// Worker the call's worker started is waited for too (it outlived its
// parent and the next call saw its Web Lock): it is born in the cgroup its
// parent's thread was moved to before the import.
func TestRenamedWorkerStillEnds(t *testing.T) {
	testDriver(t)
	t.Run("jailed", func(t *testing.T) { testRenamedWorker(t, New(Options{})) })
	t.Run("unjailed", func(t *testing.T) {
		testRenamedWorker(t, newTestDriver(seams{noJail: "test: unjailed"}))
	})
}

func testRenamedWorker(t *testing.T, d *Driver) {
	dir := filepath.Join(t.TempDir(), "renameprobe")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"skill.py":      renameProbe,
		"manifest.yaml": "name: sandboxtest/renameprobe\nversion: 1.0.0\ndescription: thread rename probe\n",
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
	call := func(params string) []string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		res, err := sb.Call(ctx, sandbox.Request{Params: json.RawMessage(params)})
		if err != nil {
			t.Fatalf("call %s: %v", params, err)
		}
		var v struct{ Held []string }
		if err := json.Unmarshal(res.Value, &v); err != nil {
			t.Fatalf("call %s: result %s (%v)", params, res.Value, err)
		}
		return v.Held
	}
	for _, how := range []string{"plain", "title", "nested"} {
		call(`{"op":"plant","secret":"SECRET-` + how + `","how":"` + how + `"}`)
		if held := call(`{"op":"look"}`); len(held) > 0 {
			t.Errorf("after a lingering call (%s) the next call sees its Web Locks %q: it ran beside the last call's worker", how, strings.Join(held, ", "))
		}
	}
}
