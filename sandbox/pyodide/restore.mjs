// Restoring Pyodide's memory snapshot into a call worker's fresh
// WebAssembly memory, reading the file straight into that memory and
// skipping what is zero in the snapshot and untouched in the memory.
// Imported by worker.mjs (host mode and its call workers); see
// docs/RATIONALE.md "A call worker restores the snapshot from its file".
//
// Pyodide's restore copies the whole snapshot (~30 MiB, half of it zero
// pages) into the memory; on a host where every first touch of a page is
// a costly fault, that copy and the host's read of the file for each
// worker were a third of a worker's start.

const PAGE = 4096;

// Bytes at the top of the stack restored as they are even where the
// snapshot has zeros: the runtime's start may have left frames there.
const STACK_TOP = 64 << 10;

function readInto(f, buf) {
  let got = 0;
  while (got < buf.length) {
    const k = f.readSync(buf.subarray(got));
    if (k === null) throw new Error("snapshot.bin ended early");
    got += k;
  }
}

// snapshotLayout reads the snapshot (an open Deno.FsFile) once, in chunks,
// and returns what a worker needs to restore it: the file's identity, its
// header (Pyodide's: magic, data offset, build id, JSON state) and the
// runs [start, end) of memory offsets whose 4 KiB pages are not all zero.
export function snapshotLayout(f) {
  const st = f.statSync();
  f.seekSync(0, Deno.SeekMode.Start);
  const head = new Uint8Array(16);
  readInto(f, head);
  const dataOff = new DataView(head.buffer).getUint32(4, true);
  if (dataOff < 16 || dataOff % 16 !== 0 || dataOff > st.size) throw new Error("snapshot.bin: bad header");
  const header = new Uint8Array(dataOff);
  f.seekSync(0, Deno.SeekMode.Start);
  readInto(f, header);
  const heapLen = st.size - dataOff;
  const runs = [];
  const buf = new Uint8Array(256 * PAGE);
  const words = new Uint32Array(buf.buffer);
  for (let off = 0; off < heapLen; off += buf.length) {
    const n = Math.min(buf.length, heapLen - off);
    readInto(f, buf.subarray(0, n));
    if (n % 4 !== 0) buf.fill(0, n, n + (4 - n % 4));
    for (let p = 0; p < n; p += PAGE) {
      const end = Math.min(p + PAGE, n);
      let zero = true;
      for (let w = p >> 2; w < (end + 3) >> 2; w++) {
        if (words[w] !== 0) { zero = false; break; }
      }
      if (zero) continue;
      const last = runs[runs.length - 1];
      if (last && last[1] === off + p) last[1] = off + end;
      else runs.push([off + p, off + end]);
    }
  }
  return { dev: st.dev, ino: st.ino, size: st.size, header, runs };
}

// mergeRanges sorts and joins ranges [start, end), clipped to [0, max).
function mergeRanges(ranges, max) {
  const rs = ranges.map(([a, b]) => [Math.max(0, a), Math.min(b, max)]).filter(([a, b]) => a < b);
  rs.sort((x, y) => x[0] - y[0]);
  const out = [];
  for (const [a, b] of rs) {
    const last = out[out.length - 1];
    if (last && a <= last[1]) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

// restoreRanges is what must be written into a fresh memory for it to hold
// the snapshot: the snapshot's non-zero pages, and whatever the runtime's
// start may have written before the restore: everything below the stack
// (static data), the top of the stack and the heap up to the current break.
// Above the break nothing has written (all memory is allocated by moving
// it), so those pages are still zero. The rest of the stack is below the
// stack pointer at the snapshot and at the restore: no frame reads it
// before writing it. Without the symbols this needs (another Pyodide
// build), everything is written.
export function restoreRanges(layout, exports) {
  const heapLen = layout.size - layout.header.length;
  const g = (name) => exports && exports[name] instanceof WebAssembly.Global ? exports[name].value >>> 0 : undefined;
  const low = g("__stack_low"), high = g("__stack_high");
  if (low === undefined || high === undefined || high < low || typeof exports.sbrk !== "function") {
    return [[0, heapLen]];
  }
  const brk = Math.ceil((exports.sbrk(0) >>> 0) / PAGE) * PAGE;
  return mergeRanges([[0, low], [Math.max(low, high - STACK_TOP), Math.max(brk, high)], ...layout.runs], heapLen);
}

// lazySnapshot returns what a worker hands Pyodide as its snapshot (an
// array as long as the file, holding only its header: untouched memory)
// and installs a hook of TypedArray.prototype.set that, when Pyodide
// copies that array's data into its memory, reads the file's ranges
// (restoreRanges) straight into the memory instead. exports() returns the
// instance's exports once it exists. Call uninstall before any code but
// Pyodide's runs.
export function lazySnapshot(path, layout, exports) {
  const snapshot = new Uint8Array(layout.size);
  snapshot.set(layout.header);
  const proto = Object.getPrototypeOf(Uint8Array.prototype);
  const set = proto.set;
  let done = false;
  proto.set = function (src, offset) {
    if (!src || src.buffer !== snapshot.buffer) return Reflect.apply(set, this, [src, offset]);
    const heapLen = layout.size - layout.header.length;
    if (done || (offset ?? 0) !== 0 || src.byteOffset !== layout.header.length || src.length !== heapLen || this.byteLength < heapLen) {
      throw new Error("unexpected copy of the memory snapshot");
    }
    done = true;
    const f = Deno.openSync(path, { read: true });
    try {
      const st = f.statSync();
      if (st.dev !== layout.dev || st.ino !== layout.ino || st.size !== layout.size) {
        throw new Error("snapshot.bin changed since the host read it");
      }
      const mem = new Uint8Array(this.buffer, this.byteOffset, heapLen);
      for (const [a, b] of restoreRanges(layout, exports())) {
        f.seekSync(layout.header.length + a, Deno.SeekMode.Start);
        readInto(f, mem.subarray(a, b));
      }
    } finally {
      f.close();
    }
  };
  const uninstall = () => { proto.set = set; };
  return { snapshot, uninstall };
}
