package worker

import _ "embed"

// Harness is the source of the Python worker harness (harness.py). It is run
// with `python3 -I -S -B -c Harness skillbox-worker`; see [Argv].
//
//go:embed harness.py
var Harness string

// Argv returns the argument vector that starts the harness with the given
// interpreter: python -I -S -B -c <Harness> skillbox-worker. -S: the
// interpreter starts without site (no .pth file or sitecustomize runs);
// the harness processes site itself where the code it runs may execute
// (in a call's own process, unless the operator trusts the environment).
func Argv(python string) []string {
	return []string{python, "-I", "-S", "-B", "-c", Harness, "skillbox-worker"}
}
