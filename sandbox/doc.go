// Package sandbox defines how skillbox runs one skill call in isolation: the
// [Spec] a policy decision produces, the [Driver] interface every backend
// implements, and the registry that "auto" chooses from.
//
// A Driver is a backend (process, linux, pyodide, ...). Opening a Spec yields
// a [Sandbox]: a prepared place to run calls of one skill under one grant (for
// the linux backend, a zygote pool). Each [Sandbox.Call] is single-use — no
// state survives from one call to the next — unless the Spec asks for
// [ModeSession] or Warm (the operator's per-skill opt-in, whose calls may
// share state the skill's import created).
//
// Backends never weaken silently. A Spec lists in Require what must be
// enforced; a driver that cannot enforce one of them returns an error of kind
// errdefs.Unsupported naming it, before any skill code runs.
//
// A backend's settings come from the policy file's backends section as a
// [Config] that the backend decodes and validates itself
// ([Registration.New], [Config.Decode]); [NewBackends] builds one Runtime's
// drivers from those sections, and a backend without one is the shared
// default ([Lookup]).
//
// The conformance suite in sandbox/sandboxtest runs the same calls against
// every driver and the attack corpus against every isolating one.
package sandbox
