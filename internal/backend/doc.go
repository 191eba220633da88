// Package backend holds what the in-tree backends (sandbox/linux,
// sandbox/process, sandbox/pyodide, sandbox/gvisor) share and an embedder
// does not need: one wording for a call that timed out and for a skill a
// backend cannot run in its image, how long a sandbox may take to start,
// the checks of a Spec's limits, required features and the skill's
// requirements against its interpreter's packages, and the assembly of a
// Result from captured output.
//
// It sits under internal/ so that package sandbox exports only what an
// embedder or a caller of the registry needs (docs/RATIONALE.md, "A small
// public surface"). It imports sandbox; sandbox cannot import it, so a
// helper about a sandbox type is a function here, not a method there.
package backend
