// Package worker speaks the host side of the host↔worker protocol
// (docs/PROTOCOL.md) and embeds the Python harness that runs inside every
// sandbox.
//
// Backends start the harness with [Argv], hand it the two protocol pipes at
// descriptors 3 and 4, and drive it with a [Conn]. Everything the worker sends
// is untrusted: frames are size-capped before allocation, every read has a
// deadline, and any violation is a skill error, never a hang.
//
// [Process] wraps the plain-subprocess case ([Pipes], [Capture], [ExitError]);
// [Zygote] drives a zygote-mode harness that forks one [ZygoteChild] per call.
package worker
