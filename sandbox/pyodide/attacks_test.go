//go:build linux

package pyodide_test

import (
	"context"
	"testing"

	"github.com/skillbox-dev/skillbox/sandbox/sandboxtest"
)

// TestAttacks runs the shared attack corpus, then the host leak checks,
// against the pyodide backend. Emulated: the skill's Python runs on
// Emscripten's emulated OS inside Deno, not as a host process, so the
// suite checks the host where a probe "succeeds" against the emulation
// (its in-memory file system, made-up DNS answers); see
// sandboxtest.Options.Emulated. Attacks that issue raw Linux system calls
// by number report "unsupported arch wasm32" and are skipped: WebAssembly
// code has no system call instruction to issue them with.
func TestAttacks(t *testing.T) {
	d := driver(t)
	opts := sandboxtest.OptionsFromProbe(context.Background(), d)
	opts.Emulated = true
	sandboxtest.Run(t, d, opts)
}
