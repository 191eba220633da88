package worker

import _ "embed"

// Harness is the source of the Python worker harness (harness.py). It is run
// with `python3 -I -B -c Harness skillbox-worker`; see [Argv].
//
//go:embed harness.py
var Harness string

// Argv returns the argument vector that starts the harness with the given
// interpreter: python -I -B -c <Harness> skillbox-worker.
func Argv(python string) []string {
	return []string{python, "-I", "-B", "-c", Harness, "skillbox-worker"}
}
