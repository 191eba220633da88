// Package skillbox runs AI-agent skills (the Skillware format: manifest.yaml,
// skill.py, instructions.md, card.json) safely: every tool call goes through a
// policy check and runs in a fresh sandbox chosen by policy.
//
// [Runtime] is the front door. It resolves a skill reference, loads and
// validates the bundle, decides the effective grant (a sandbox spec), seals a
// copy of the bundle, validates the parameters against the manifest's JSON
// Schema, runs the call on a backend and writes an audit record:
//
//	resolve → load → policy (spec) → seal → validate → backend → result → audit
//
// The CLI (cmd/skillbox) and the servers are thin layers over a Runtime.
// Backends register themselves with package sandbox; import
// github.com/skillbox-dev/skillbox/sandbox/all (or a single backend package)
// to make them available.
package skillbox
