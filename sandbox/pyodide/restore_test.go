//go:build unix

package pyodide

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// restoreCheck restores the worker folder's snapshot the way a call worker
// does (restore.mjs, the host's compiled module) and compares the memory,
// right after the copy and before any Python runs, with the snapshot's data
// byte for byte; then runs Python in it. With "changed" it hands the
// restore a layout of another file, which must be refused.
const restoreCheck = `
const [pyodideDir, workerDir, mode] = Deno.args;
const { lazySnapshot, snapshotLayout, restoreRanges } = await import("file://" + workerDir + "/restore.mjs");
const path = workerDir + "/snapshot.bin";
const f = Deno.openSync(path, { read: true });
const layout = snapshotLayout(f);
f.close();
if (mode === "changed") layout.ino += 1;
const full = Deno.readFileSync(path).subarray(layout.header.length);
const module = await WebAssembly.compile(Deno.readFileSync(pyodideDir + "/pyodide.asm.wasm"));
let exports = null;
const { instantiate } = WebAssembly;
const fromModule = (imports) => instantiate(module, imports).then((instance) => { exports = instance.exports; return { instance, module }; });
WebAssembly.instantiate = (src, imports) => src instanceof WebAssembly.Module ? instantiate(src, imports) : fromModule(imports);
WebAssembly.instantiateStreaming = (_r, imports) => fromModule(imports);
const lazy = lazySnapshot(path, layout, () => exports);
const proto = Object.getPrototypeOf(Uint8Array.prototype);
const hooked = proto.set;
const out = { pages: 0, differ: [], ranges: 0, written: 0, nonzero: layout.runs.reduce((n, [a, b]) => n + b - a, 0) };
proto.set = function (src, off) {
  Reflect.apply(hooked, this, [src, off]);
  if (src && src.buffer === lazy.snapshot.buffer) {
    const mem = new Uint8Array(this.buffer, this.byteOffset, full.length);
    const rs = restoreRanges(layout, exports);
    out.ranges = rs.length;
    out.written = rs.reduce((n, [a, b]) => n + b - a, 0);
    for (let p = 0; p < full.length; p += 4096) {
      out.pages++;
      const e = Math.min(p + 4096, full.length);
      for (let i = p; i < e; i++) if (mem[i] !== full[i]) { out.differ.push(p); break; }
    }
  }
};
const { loadPyodide } = await import("file://" + pyodideDir + "/pyodide.mjs");
try {
  const py = await loadPyodide({ indexURL: pyodideDir + "/", _loadSnapshot: lazy.snapshot, env: { HOME: "/tmp" } });
  out.python = py.runPython("import json, sys; json.dumps({'sum': sum(range(10)), 'modules': 'json' in sys.modules})");
} catch (e) {
  out.error = String(e && e.message || e);
} finally {
  lazy.uninstall();
}
console.log(JSON.stringify(out));
`

// TestLazySnapshotRestore checks the call workers' restore of the memory
// snapshot (restore.mjs): the memory holds exactly the snapshot, though
// only part of it was written, and a snapshot file that is not the one
// the host read is refused.
func TestLazySnapshotRestore(t *testing.T) {
	rt, err := Locate(DefaultCacheDir())
	if err != nil {
		t.Skipf("pyodide backend unavailable: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	f, err := prepare(ctx, rt)
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "check.mjs")
	if err := os.WriteFile(script, []byte(restoreCheck), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(mode string) (res struct {
		Pages, Ranges, Written, Nonzero int
		Differ                          []int
		Python, Error                   string
	}) {
		t.Helper()
		cmd := exec.CommandContext(ctx, rt.Deno, "run", "--no-remote", "--no-npm", "--no-config", "--no-lock", "--no-prompt",
			"--allow-read", script, rt.Pyodide, f.dir, mode)
		cmd.Env = denoEnv(rt)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v\n%s", mode, err, stderr.String())
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
			t.Fatalf("%s: %v: %s\n%s", mode, err, out, stderr.String())
		}
		return res
	}

	res := run("same")
	if res.Error != "" || res.Python != `{"sum": 45, "modules": true}` {
		t.Fatalf("restored interpreter: python %q, error %q", res.Python, res.Error)
	}
	if res.Pages == 0 || len(res.Differ) > 0 {
		t.Fatalf("memory after the restore differs from the snapshot in %d of %d pages (first at %v)", len(res.Differ), res.Pages, res.Differ[:min(len(res.Differ), 5)])
	}
	// The point of it: the zero pages above the heap were not written.
	if res.Written >= res.Pages*4096 {
		t.Errorf("the restore wrote all %d bytes of the snapshot (%d non-zero)", res.Written, res.Nonzero)
	}
	t.Logf("restored %d pages exactly, writing %d MiB in %d ranges (%d MiB not zero)", res.Pages, res.Written>>20, res.Ranges, res.Nonzero>>20)

	if res := run("changed"); !strings.Contains(res.Error, "snapshot.bin changed") {
		t.Fatalf("a snapshot file other than the one read: error %q, python %q", res.Error, res.Python)
	}
}
