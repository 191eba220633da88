// Package all registers every skillbox backend available on this platform.
// Import it for its side effect.
package all

import (
	_ "github.com/skillbox-dev/skillbox/sandbox/process" // plain subprocess, no isolation
	_ "github.com/skillbox-dev/skillbox/sandbox/pyodide" // Python in WebAssembly on Deno
)
