// skillbox Pyodide worker. Embedded in the skillbox binary and run by Deno
// with every permission denied except reading the Pyodide folder, this
// worker's own folder (script, harness, snapshot) and the protocol
// descriptors /dev/fd/3 (requests), /dev/fd/5 (setup) and writing
// /dev/fd/4 (replies). See sandbox/pyodide/doc.go.
//
//   deno run ... worker.mjs <pyodide dir> <worker dir> run
//   deno run ... worker.mjs <pyodide dir> <worker dir> snapshot <out>
//
// Python code can reach every JS global through the `js` module, so nothing
// here is a secret or a boundary: Deno's permissions are the boundary.
const [pyodideDir, workerDir, mode, out] = Deno.args;
const EX_SOFTWARE = 70;

function readAll(f, n) {
  const buf = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const k = f.readSync(buf.subarray(got));
    if (k === null) {
      if (got === 0) return null;
      throw new Error("EOF inside a frame");
    }
    got += k;
  }
  return buf;
}

function readFrame(f) {
  const hdr = readAll(f, 4);
  if (hdr === null) return null;
  const n = new DataView(hdr.buffer).getUint32(0);
  if (n === 0 || n > (512 << 20)) throw new Error("bad frame length " + n);
  return new TextDecoder().decode(readAll(f, n));
}

function writeAll(f, data) {
  let off = 0;
  while (off < data.length) off += f.writeSync(data.subarray(off));
}

function fsPath(p) {
  return new URL("file://" + p).pathname;
}

// Pyodide's Emscripten runtime takes Deno for Node and asks process for the
// uid and umask, which Deno gates behind --allow-sys: answer like a jail
// (nobody, 022) instead of crashing the interpreter with NotCapable.
if (globalThis.process) {
  globalThis.process.getuid = () => 65534;
  globalThis.process.umask = () => 0o022;
}

const { loadPyodide } = await import(new URL("file://" + fsPath(pyodideDir) + "/pyodide.mjs").href);
const indexURL = pyodideDir.replace(/\/?$/, "/");

if (mode === "snapshot") {
  const py = await loadPyodide({ indexURL, _makeSnapshot: true, env: { HOME: "/scratch" } });
  const harness = Deno.readTextFileSync(workerDir + "/harness.py");
  const boot = Deno.readTextFileSync(workerDir + "/bootstrap.py");
  py.globals.set("_skillbox_harness_src", harness);
  py.runPython(boot, { filename: "<skillbox-bootstrap>" });
  py.globals.delete("_skillbox_harness_src");
  Deno.writeFileSync(out, py.makeMemorySnapshot());
  Deno.exit(0);
}

const req = Deno.openSync("/dev/fd/3", { read: true });
const rep = Deno.openSync("/dev/fd/4", { write: true });
const stdoutSink = { write: (b) => { writeAll(Deno.stdout, b); return b.length; } };
const stderrSink = { write: (b) => { writeAll(Deno.stderr, b); return b.length; } };

const py = await loadPyodide({
  indexURL,
  _loadSnapshot: Deno.readFileSync(workerDir + "/snapshot.bin"),
  env: { HOME: "/scratch" },
});
py.setStdout(stdoutSink);
py.setStderr(stderrSink);
py.registerJsModule("_skillbox_host", {
  exit: (code) => Deno.exit(code),
});

// Setup (bundle files, the skill's environment's packages and the
// environment variables) comes on fd 5, from the host.
const setupFile = Deno.openSync("/dev/fd/5", { read: true });
const setup = JSON.parse(readFrame(setupFile));
setupFile.close();
function writeTree(dir, files) {
  for (const [rel, b64] of files) {
    const p = dir + "/" + rel;
    py.FS.mkdirTree(p.substring(0, p.lastIndexOf("/")));
    py.FS.writeFile(p, Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
  }
  py.FS.mkdirTree(dir);
}
writeTree(setup.bundle, setup.files);
if (setup.site) writeTree(setup.site, setup.site_files || []);

const mod = py.pyimport("skillbox_pyodide");
mod.prepare(JSON.stringify(setup.env), setup.scratch, setup.site || "");

function send(proxy) {
  const bytes = proxy.toJs();
  proxy.destroy();
  writeAll(rep, bytes);
}

try {
  const init = readFrame(req);
  if (init === null) Deno.exit(0);
  // callPromising lets Python switch stacks (JSPI), so asyncio.run and
  // awaiting JS promises work in an async execute().
  const r = await mod.init.callPromising(init);
  const ok = r.get(0);
  send(r.get(1));
  const single = r.get(2);
  r.destroy();
  if (!ok) Deno.exit(0);
  for (;;) {
    const call = readFrame(req);
    if (call === null) break;
    send(await mod.call.callPromising(call));
    if (single) break;
  }
} catch (e) {
  try {
    const msg = JSON.stringify({ type: "error", id: 0, error: { kind: "harness", type: "WorkerError", message: String(e) } });
    const b = new TextEncoder().encode(msg);
    const hdr = new Uint8Array(4);
    new DataView(hdr.buffer).setUint32(0, b.length);
    writeAll(rep, hdr);
    writeAll(rep, b);
  } catch { /* the host reports the exit */ }
  console.error("skillbox-pyodide-worker:", e);
  Deno.exit(EX_SOFTWARE);
}
Deno.exit(0);
