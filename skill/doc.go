// Package skill reads Skillware skill bundles: it parses and validates
// manifests, loads bundles, computes content digests and resolves skill ids
// to folders. It runs nothing.
//
// A bundle is a folder holding manifest.yaml, skill.py (one BaseSkill
// subclass), instructions.md (optional, the agent's prompt) and card.json
// (optional, the UI card). [Load] reads one; [Digest] and [Files] describe its
// exact contents so that trust can be pinned to them.
//
// # Manifests
//
// [ParseManifest] accepts the fields Skillware uses. name, version and
// description are required. env_vars may be a mapping NAME: {description,
// required} (Skillware's shape), a list of names, or a list of {name,
// description, required}; all become [EnvVar] values in manifest order.
// Unknown top-level fields are kept in Manifest.Extra and otherwise ignored,
// so newer Skillware manifests load. skillbox adds an optional permissions
// block, which is checked strictly (unknown keys are errors, because a
// misspelt request should not pass unnoticed):
//
//	permissions:
//	  network: ["api.etherscan.io", "api.coingecko.com:443", "*.example.org"]
//	  env: ["ETHERSCAN_API_KEY"]       # absent: the names in env_vars
//	  filesystem: {read: ["data/"]}     # bundle-relative; never escapes the bundle
//	  limits: {timeout: 30s, memory: 256MiB, pids: 64, output: 1MiB}
//
// Every problem is an errdefs.Invalid error whose lines read
// "manifest.yaml:LINE: FIELD: problem"; all problems are reported at once,
// ordered by line.
//
// # Resolution
//
// Skills live in roots as <root>/<category>/<name>/ and are named by the id
// "category/name". [DefaultRoots] builds Skillware's search order
// (SKILLWARE_SKILL_PATH, then ./skills in the working directory or up to six
// parents, then the bundled skills); a [Resolver] searches them in order and
// the first match wins. Because a local skill can silently shadow an official
// one, every shadowing is reported in Skill.Warnings.
package skill
