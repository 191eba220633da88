//go:build unix

package pyodide

import (
	"fmt"

	"github.com/skillbox-dev/skillbox/sandbox"
)

// Memory rule. On Linux, when the memory controller is usable, each worker
// (the Deno process: V8, the Pyodide runtime, the restored snapshot, the
// skill) runs in its own cgroup whose limit is
//
//	memBaseline + Spec.Limits.Memory
//
// so the skill's budget is what it may add on top of an idle, skill-loaded
// worker, and a worker past it is killed by the kernel's OOM killer and
// reported as errdefs.LimitError{Resource: "memory"}. memBaseline is what
// a started, snapshot-restored worker with a small skill imported uses:
// its cgroup peak measured 151-157 MiB on cgroup v1 (page cache of the
// runtime files included), about 190 MB RSS with Deno's shared mappings;
// 192 MiB leaves the difference as headroom. RLIMIT_AS cannot be used: V8 reserves far more address space
// than it uses and Deno fails to start under it (DESIGN §5).
//
// The WebAssembly memory (Python's whole heap) and V8's old space are then
// capped at the cgroup limit, so the cgroup is what binds. Without the
// controller (macOS, or no delegated memory cgroup) Python's heap is capped
// at the budget by the WebAssembly limit (MemoryError beyond it) and the
// JavaScript heap at jsHeapMiB; that bounds the heaps, not the process, so
// memory-limit is not claimed.
const memBaseline = 192 << 20

// A host process (single-use calls, each in a Web Worker) holds more than
// a worker process: the compiled WebAssembly module and the snapshot it
// hands out, besides its first Web Worker, and each further started
// worker (a V8 isolate with Pyodide's JavaScript and a WebAssembly memory
// restored from the snapshot) adds about as much again. A host holds
// Options.Idle started workers plus the armed one, so its cgroup limit is
//
//	hostBaseline + Idle × isolateBaseline + Spec.Limits.Memory
//
// Measured (cgroup v1, total_rss of a host's group at rest, hello-sized
// skill armed): Idle 1: 367 MiB; Idle 2: 472-510; Idle 3: 605-645. So a
// host with its first worker is about 240 MiB and each further worker
// 120-140 MiB; the constants leave headroom above both. The memory of a
// call's worker is freed only when its thread has ended, which the box
// waits for before arming the next call (box.awaitEnded), so a call's
// budget is never shared with the one before it (TestBudgetIsPerCall).
const (
	hostBaseline    = 256 << 20
	isolateBaseline = 144 << 20
)

// baseline is the memory a worker process holds before the skill's
// budget: a host (host) holds Idle started Web Workers besides its armed
// one.
func (b *box) baseline(host bool) int64 {
	if !host {
		return memBaseline
	}
	return hostBaseline + int64(b.d.opts.Idle)*isolateBaseline
}

// denoTasks is what a worker's pids limit allows on top of the Spec's:
// Deno's own threads (V8 platform workers, tokio, the GC) number about 20.
// Python in WebAssembly cannot fork or start threads; a skill could start
// JavaScript Workers, which are threads, and the pids limit bounds them.
const denoTasks = 48

// v8Flags caps the WebAssembly memory, where all of Python's heap lives,
// and the JavaScript heap a skill can fill through the js module. grouped
// says the worker runs in a memory cgroup, which then is the limit.
func v8Flags(l sandbox.Limits, grouped bool) []string {
	pages := l.Memory >> 16
	heap := int64(jsHeapMiB)
	if grouped {
		pages = (memBaseline + l.Memory) >> 16
		heap = max(heap, (memBaseline+l.Memory)>>20)
	}
	pages = min(max(pages, minWasmPages), maxWasmPages)
	return []string{
		fmt.Sprintf("--wasm-max-mem-pages=%d", pages),
		fmt.Sprintf("--max-old-space-size=%d", heap),
	}
}

// minWasmPages keeps room for the restored snapshot (about 31 MB) and the
// interpreter's working set: 64 MiB. maxWasmPages is wasm32's 4 GiB.
const (
	minWasmPages = 1024
	maxWasmPages = 65536
)

// jsHeapMiB bounds the JavaScript heap; Pyodide itself needs well under it.
const jsHeapMiB = 256
