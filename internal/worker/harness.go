package worker

import (
	_ "embed"
	"strings"
	"sync"
)

//go:embed harness.py
var harnessSource string

//go:embed sdk.py
var sdkSource string

// sdkMarker is the line of harness.py that sdk.py replaces.
const sdkMarker = "# @@SDK@@ worker.Harness puts sdk.py (the Skillware stand-in) here.\n"

// Harness returns the source of the Python worker harness: harness.py with
// sdk.py, the stand-in for the Skillware SDK, spliced in (one script, so
// that `python3 -c` runs it). It is run with
// `python3 -I -S -B -c Harness skillbox-worker`; see [Argv]. It is made on
// first use, not in the package's init, which every skillbox process runs.
var Harness = sync.OnceValue(func() string { return splice(harnessSource, sdkMarker, sdkSource) })

func splice(into, marker, text string) string {
	if strings.Count(into, marker) != 1 {
		panic("worker: harness.py must hold the SDK marker line exactly once")
	}
	return strings.Replace(into, marker, text, 1)
}

// Argv returns the argument vector that starts the harness with the given
// interpreter: python -I -S -B -c <Harness> skillbox-worker. -S: the
// interpreter starts without site (no .pth file or sitecustomize runs);
// the harness processes site itself where the code it runs may execute
// (in a call's own process, unless the operator trusts the environment).
func Argv(python string) []string {
	return []string{python, "-I", "-S", "-B", "-c", Harness(), "skillbox-worker"}
}
