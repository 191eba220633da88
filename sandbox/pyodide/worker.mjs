// skillbox Pyodide worker. Embedded in the skillbox binary and run by Deno
// with every permission denied except reading the Pyodide folder, this
// worker's own folder (script, harness, snapshot) and the protocol
// descriptors /dev/fd/3 (requests), /dev/fd/5 (setup) and writing
// /dev/fd/4 (replies). See sandbox/pyodide/doc.go.
//
//   deno run ... worker.mjs <pyodide dir> <worker dir> run
//   deno run ... worker.mjs <pyodide dir> <worker dir> host <idle> <timeout ms> <net hosts>
//   deno run ... worker.mjs <pyodide dir> <worker dir> snapshot <out>
//
// run: one process serves one worker (single-use: one call; session: every
// call of the session). host: one long-running process per sandbox serves
// single-use calls one at a time, each in a fresh Web Worker (its own V8
// isolate, Pyodide restored from the snapshot into its own WebAssembly
// memory) that is terminated when the call ends; the same file is the Web
// Worker's script (name "skillbox-call").
//
// Python code can reach every JS global through the `js` module, so nothing
// inside a worker is a secret or a boundary: Deno's permissions are the
// boundary, and in host mode the isolate (see docs/RATIONALE.md).
import { lazySnapshot, snapshotLayout } from "./restore.mjs";

const EX_SOFTWARE = 70;
const CALL_WORKER = "skillbox-call";

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

function frameOf(text) {
  const b = new TextEncoder().encode(text);
  const out = new Uint8Array(4 + b.length);
  new DataView(out.buffer).setUint32(0, b.length);
  out.set(b, 4);
  return out;
}

// harnessFrame is the reply a worker that failed outside Python sends: the
// host reports it as a harness error and retires the worker's process.
function harnessFrame(e) {
  return frameOf(JSON.stringify({ type: "error", id: 0, error: { kind: "harness", type: "WorkerError", message: String(e) } }));
}

// Pyodide's Emscripten runtime takes Deno for Node and asks process for the
// uid and umask, which Deno gates behind --allow-sys: answer like a jail
// (nobody, 022) instead of crashing the interpreter with NotCapable.
function patchProcess() {
  if (globalThis.process) {
    globalThis.process.getuid = () => 65534;
    globalThis.process.umask = () => 0o022;
  }
}

// applySetup copies the setup frame's bundle files and the skill's
// environment's packages into Pyodide's in-memory file system and prepares
// the interpreter (environment variables, scratch, the environment's site
// directory, process emulation); it returns the bootstrap module.
function applySetup(py, setup) {
  const writeTree = (dir, files) => {
    for (const [rel, b64] of files) {
      const p = dir + "/" + rel;
      py.FS.mkdirTree(p.substring(0, p.lastIndexOf("/")));
      py.FS.writeFile(p, Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
    }
    py.FS.mkdirTree(dir);
  };
  writeTree(setup.bundle, setup.files);
  if (setup.site) writeTree(setup.site, setup.site_files || []);
  const mod = py.pyimport("skillbox_pyodide");
  mod.prepare(JSON.stringify(setup.env), setup.scratch, setup.site || "");
  return mod;
}

// readSnapshotLayout reads the worker folder's snapshot once for what
// loadRestored needs.
function readSnapshotLayout(workerDir) {
  const path = workerDir + "/snapshot.bin";
  const f = Deno.openSync(path, { read: true });
  try {
    return { path, layout: snapshotLayout(f) };
  } finally {
    f.close();
  }
}

// loadRestored loads Pyodide restored from the snapshot (readSnapshotLayout)
// with restore.mjs, which reads the file straight into the new memory.
// module, when set, is the host's compiled Pyodide, instantiated instead
// of compiling the file's bytes again. The hooks this needs are removed
// before it returns, before any code but Pyodide's ran.
async function loadRestored(loadPyodide, options, snap, module) {
  const { instantiate, instantiateStreaming } = WebAssembly;
  let exports = null;
  const keep = (p) => p.then((r) => {
    exports = (r.instance ?? r).exports;
    return r;
  });
  const fromModule = (imports) => keep(instantiate(module, imports).then((instance) => ({ instance, module })));
  WebAssembly.instantiate = function (src, imports) {
    if (module && !(src instanceof WebAssembly.Module)) return fromModule(imports);
    return keep(instantiate.call(this, src, imports));
  };
  WebAssembly.instantiateStreaming = function (response, imports) {
    return module ? fromModule(imports) : keep(instantiateStreaming.call(this, response, imports));
  };
  const lazy = lazySnapshot(snap.path, snap.layout, () => exports);
  // Pyodide keeps its whole config for the interpreter's life: a thenable
  // that lets go of the array once awaited leaves it holding nothing.
  let snapshot = lazy.snapshot;
  const handOnce = { then(resolve) { const s = snapshot; snapshot = null; resolve(s); } };
  try {
    return await loadPyodide({ ...options, _loadSnapshot: handOnce });
  } finally {
    Object.assign(WebAssembly, { instantiate, instantiateStreaming });
    lazy.uninstall();
  }
}

if (globalThis.name === CALL_WORKER) {
  await callWorker();
} else {
  await main();
}

async function main() {
  const [pyodideDir, workerDir, mode, ...rest] = Deno.args;
  patchProcess();
  const { loadPyodide } = await import(new URL("file://" + fsPath(pyodideDir) + "/pyodide.mjs").href);
  const indexURL = pyodideDir.replace(/\/?$/, "/");

  if (mode === "snapshot") {
    const py = await loadPyodide({ indexURL, _makeSnapshot: true, env: { HOME: "/scratch" } });
    const harness = Deno.readTextFileSync(workerDir + "/harness.py");
    const boot = Deno.readTextFileSync(workerDir + "/bootstrap.py");
    py.globals.set("_skillbox_harness_src", harness);
    py.runPython(boot, { filename: "<skillbox-bootstrap>" });
    py.globals.delete("_skillbox_harness_src");
    Deno.writeFileSync(rest[0], py.makeMemorySnapshot());
    Deno.exit(0);
  }
  if (mode === "host") {
    await host(pyodideDir, workerDir, rest);
    return;
  }

  const req = Deno.openSync("/dev/fd/3", { read: true });
  const rep = Deno.openSync("/dev/fd/4", { write: true });
  const stdoutSink = { write: (b) => { writeAll(Deno.stdout, b); return b.length; } };
  const stderrSink = { write: (b) => { writeAll(Deno.stderr, b); return b.length; } };

  const py = await loadRestored(loadPyodide, { indexURL, env: { HOME: "/scratch" } }, readSnapshotLayout(workerDir));
  py.setStdout(stdoutSink);
  py.setStderr(stderrSink);
  py.registerJsModule("_skillbox_host", {
    exit: (code) => Deno.exit(code),
  });

  // Setup (bundle files and environment) comes on fd 5, from the host.
  const setupFile = Deno.openSync("/dev/fd/5", { read: true });
  const setup = JSON.parse(readFrame(setupFile));
  setupFile.close();
  const mod = applySetup(py, setup);

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
      writeAll(rep, harnessFrame(e));
    } catch { /* the host reports the exit */ }
    console.error("skillbox-pyodide-worker:", e);
    Deno.exit(EX_SOFTWARE);
  }
  Deno.exit(0);
}

// ---------------------------------------------------------------------------
// Host mode: the long-running process of one sandbox (one skill, one grant
// set). It compiles Pyodide's WebAssembly module and reads the snapshot
// once, keeps <idle> call workers started (Pyodide restored, bundle copied
// in, the skill NOT imported), and serves the frames of docs/PROTOCOL.md
// in order, one call at a time:
//
//   init  -> the init's "mark", if any, is written to fds 1 and 2; a
//            started worker imports the skill; its ready (or load
//            error) frame is the reply. At most one worker holds skill
//            code at any time: the next one imports only after the
//            previous one was terminated.
//   call  -> that worker runs the call; its reply frame is the reply; the
//            worker is terminated. Its stdout and stderr are written to
//            fds 1 and 2 before the reply.
//
// A worker that ends itself (os._exit, os.kill on itself) or outlives the
// call's timeout is terminated and answered with an "exited" frame (code,
// or signal 9 for the timeout). A worker that fails outside Python is a
// harness error, after which the Go side retires this process.
async function host(pyodideDir, workerDir, [idleArg, timeoutArg, netArg]) {
  const idle = Math.max(1, parseInt(idleArg, 10) || 1);
  const timeoutMs = Math.max(1, parseInt(timeoutArg, 10) || 30000);
  const net = netArg ? netArg.split(",") : false;
  const req = Deno.openSync("/dev/fd/3", { read: true });
  const rep = Deno.openSync("/dev/fd/4", { write: true });
  const setupFile = Deno.openSync("/dev/fd/5", { read: true });
  const setupText = readFrame(setupFile);
  setupFile.close();
  // Compiled once, shared by every worker: a WebAssembly.Module is
  // immutable code; each worker instantiates it into its own memory.
  const wasm = await WebAssembly.compile(Deno.readFileSync(pyodideDir + "/pyodide.asm.wasm"));
  // Each worker reads the snapshot from its file straight into its own
  // memory (restore.mjs); the host reads it once, for its layout, and
  // keeps no copy. A worker checks that the file is still this one.
  const snapshot = readSnapshotLayout(workerDir);
  const lock = Deno.readTextFileSync(pyodideDir + "/pyodide-lock.json");
  // A worker's permissions: at most this process's, minus the protocol
  // descriptors (the host alone speaks to Go) and the snapshot's writer.
  const permissions = {
    read: [pyodideDir, workerDir], write: false, net, env: false, run: false,
    ffi: false, sys: false, import: false,
  };
  const url = new URL("file://" + fsPath(workerDir) + "/worker.mjs");

  // A call worker's messages drive a small state machine; anything a
  // worker sends out of turn is ignored, and nothing it sends after its
  // end reaches the next call (the handler is detached on terminate).
  function spawn() {
    const w = { worker: null, up: null, pending: null, ended: false, exit: null };
    let upResolve;
    w.up = new Promise((r) => { upResolve = r; });
    w.worker = new Worker(url, { type: "module", name: CALL_WORKER, deno: { permissions } });
    const end = (outcome) => {
      if (w.ended) return;
      w.ended = true;
      w.worker.onmessage = null;
      w.worker.onerror = (e) => e.preventDefault();
      w.worker.terminate();
      upResolve(outcome);
      if (w.pending) {
        const p = w.pending;
        w.pending = null;
        p(outcome);
      }
    };
    w.end = end;
    w.worker.onmessage = (e) => {
      const m = e.data;
      if (!m || typeof m !== "object") return;
      switch (m.t) {
        case "out":
          if (m.data instanceof Uint8Array) writeAll(m.fd === 2 ? Deno.stderr : Deno.stdout, m.data);
          return;
        case "up":
          upResolve(null);
          return;
        case "frame": // ready (or load error) for init, reply for call
          if (w.pending && m.data instanceof Uint8Array) {
            const p = w.pending;
            w.pending = null;
            p({ frame: m.data });
          }
          return;
        case "exit":
          end({ exited: { code: (Number(m.code) | 0) & 0xff } });
          return;
        case "crash":
          end({ crash: String(m.message) });
          return;
      }
    };
    w.worker.onerror = (e) => {
      e.preventDefault();
      end({ crash: String(e.message) });
    };
    w.worker.postMessage({ t: "start", indexURL: pyodideDir.replace(/\/?$/, "/"), wasm, snapshot, lock, setup: setupText });
    return w;
  }

  // ask sends m to w and waits for its frame (or its end); timeout, when
  // set, terminates the worker as a signal 9 would.
  function ask(w, m, timeout) {
    return new Promise((resolve) => {
      if (w.ended) {
        resolve({ crash: "call worker ended before it was asked" });
        return;
      }
      let timer = 0;
      w.pending = (o) => { clearTimeout(timer); resolve(o); };
      if (timeout) timer = setTimeout(() => w.end({ exited: { signal: 9 } }), timeout);
      w.worker.postMessage(m);
    });
  }

  // oneFrame checks that a worker's frame is exactly one protocol frame:
  // a skill that forged two would otherwise answer the next call.
  function oneFrame(b) {
    return b.length > 4 && new DataView(b.buffer, b.byteOffset, 4).getUint32(0) === b.length - 4;
  }

  const ready = [];
  const refill = () => { while (ready.length < idle) ready.push(spawn()); };
  ready.push(spawn());
  let armed = null;
  const reqAsync = await Deno.open("/dev/fd/3", { read: true });
  req.close();
  async function readAllAsync(n) {
    const buf = new Uint8Array(n);
    let got = 0;
    while (got < n) {
      const k = await reqAsync.read(buf.subarray(got));
      if (k === null) {
        if (got === 0) return null;
        throw new Error("EOF inside a frame");
      }
      got += k;
    }
    return buf;
  }
  async function nextFrame() {
    const hdr = await readAllAsync(4);
    if (hdr === null) return null;
    const n = new DataView(hdr.buffer).getUint32(0);
    if (n === 0 || n > (512 << 20)) throw new Error("bad frame length " + n);
    return new TextDecoder().decode(await readAllAsync(n));
  }
  const idOf = (text) => {
    const m = /"id"\s*:\s*(\d+)/.exec(text.slice(0, 64));
    return m ? Number(m[1]) : 0;
  };
  const reply = (id, outcome) => {
    if (outcome.frame) {
      if (!oneFrame(outcome.frame)) return harnessFrame("a call worker's reply is not one protocol frame");
      return outcome.frame;
    }
    if (outcome.exited) {
      return frameOf(JSON.stringify({ type: "exited", id, code: outcome.exited.code ?? 0, signal: outcome.exited.signal ?? 0 }));
    }
    return harnessFrame(outcome.crash);
  };

  try {
    for (;;) {
      const text = await nextFrame();
      if (text === null) break;
      if (/^\{\s*"type"\s*:\s*"init"/.test(text)) {
        if (armed) armed.end({ crash: "init while a call worker was armed" });
        // The Go side sends the init once the last call's worker has
        // ended, with a fresh mark: whatever reached fds 1 and 2 before
        // the mark (a worker writing late, straight to them) is not the
        // next call's output.
        const { mark } = JSON.parse(text);
        if (typeof mark === "string" && mark !== "") {
          const b = new TextEncoder().encode(mark);
          writeAll(Deno.stdout, b);
          writeAll(Deno.stderr, b);
        }
        // The next call's worker starts once this one has the skill
        // loaded, not competing with it.
        const w = ready.shift() ?? spawn();
        const up = await w.up;
        if (up) { // ended before it was up
          writeAll(rep, reply(0, up));
          continue;
        }
        const o = await ask(w, { t: "init", text }, 0);
        writeAll(rep, reply(0, o));
        refill();
        if (o.frame && oneFrame(o.frame) && !w.ended && new TextDecoder().decode(o.frame.subarray(4, 20)).startsWith('{"type":"ready"')) {
          armed = w;
        } else {
          w.end({ crash: "not armed" });
        }
        continue;
      }
      const id = idOf(text);
      const w = armed;
      armed = null;
      if (!w) {
        writeAll(rep, harnessFrame("call without a loaded skill"));
        continue;
      }
      const o = await ask(w, { t: "call", text }, timeoutMs);
      w.end({ crash: "done" });
      writeAll(rep, reply(id, o));
    }
  } catch (e) {
    try {
      writeAll(rep, harnessFrame(e));
    } catch { /* the host reports the exit */ }
    console.error("skillbox-pyodide-host:", e);
    Deno.exit(EX_SOFTWARE);
  }
  Deno.exit(0);
}

// ---------------------------------------------------------------------------
// A call worker (Web Worker in host mode). Everything here runs before the
// skill's code; once the skill is imported, the worker is the skill's.
async function callWorker() {
  const post = (m, t) => self.postMessage(m, t ?? []);
  const inbox = [];
  let wake = null;
  self.onmessage = (e) => {
    inbox.push(e.data);
    if (wake) { const w = wake; wake = null; w(); }
  };
  const next = async () => {
    while (inbox.length === 0) await new Promise((r) => { wake = r; });
    return inbox.shift();
  };
  try {
    // Globals that would reach other workers of this process or outlive
    // the call: the Cache API (stored under Deno's folder, which the host
    // keeps unwritable too), BroadcastChannel (a channel between the
    // process's workers; node:worker_threads still exports one, so the
    // host's one-skill-worker-at-a-time rule is what closes it) and Deno's
    // internals.
    delete globalThis.caches;
    delete globalThis.BroadcastChannel;
    delete Deno[Deno.internal];
    patchProcess();
    const start = await next();
    const { loadPyodide } = await import(new URL(start.indexURL + "pyodide.mjs", "file:///").href);
    const py = await loadRestored(loadPyodide, {
      indexURL: start.indexURL,
      lockFileContents: start.lock,
      env: { HOME: "/scratch" },
    }, start.snapshot, start.wasm);
    start.snapshot = null;
    const sink = (fd) => ({ write: (b) => { const c = b.slice(); post({ t: "out", fd, data: c }, [c.buffer]); return b.length; } });
    py.setStdout(sink(1));
    py.setStderr(sink(2));
    py.registerJsModule("_skillbox_host", {
      exit: (code) => {
        post({ t: "exit", code });
        // Nothing of the skill's Python runs after os._exit: an error that
        // Pyodide treats as fatal is never turned into a Python exception,
        // so it unwinds every Python frame (no except or finally sees it)
        // back to this worker's call, which returns to the event loop,
        // where the host's terminate() ends the worker and its thread.
        // (Blocking here instead would keep the thread forever: Deno's
        // terminate() does not stop a blocked or busy worker.)
        const e = new Error("os._exit");
        e.pyodide_fatal_error = true;
        throw e;
      },
    });
    const mod = applySetup(py, JSON.parse(start.setup));
    start.setup = null;
    post({ t: "up" });
    const frameOut = (proxy) => {
      const b = proxy.toJs();
      proxy.destroy();
      const c = b.slice();
      post({ t: "frame", data: c }, [c.buffer]);
    };
    const init = await next();
    const r = await mod.init.callPromising(init.text);
    const ok = r.get(0);
    frameOut(r.get(1));
    r.destroy();
    if (!ok) return;
    const call = await next();
    frameOut(await mod.call.callPromising(call.text));
  } catch (e) {
    post({ t: "crash", message: String(e && e.stack || e) });
  }
}
