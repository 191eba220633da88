//go:build unix

package pyodide

import (
	"fmt"
	"os/exec"

	"github.com/skillbox-dev/skillbox/sandbox"
)

// v8Flags caps the WebAssembly memory, where all of Python's heap lives, at
// the call's memory limit (a skill that allocates more gets MemoryError),
// and the JavaScript heap a skill can fill through the js module. These are
// per-heap caps, not a limit on the process, so the backend does not claim
// memory-limit for them.
func v8Flags(l sandbox.Limits) []string {
	pages := l.Memory >> 16
	if pages < minWasmPages {
		pages = minWasmPages
	}
	return []string{
		fmt.Sprintf("--wasm-max-mem-pages=%d", pages),
		fmt.Sprintf("--max-old-space-size=%d", jsHeapMiB),
	}
}

// minWasmPages keeps room for the restored snapshot (about 31 MB) and the
// interpreter's working set: 64 MiB.
const minWasmPages = 1024

// jsHeapMiB bounds the JavaScript heap; Pyodide itself needs well under it.
const jsHeapMiB = 256

// launcher starts a worker; nil is exec.Cmd.Start.
func (b *box) launcher() func(*exec.Cmd) error { return nil }
