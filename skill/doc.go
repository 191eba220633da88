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
// "category/name". [FindRoots] builds the roots as Skillware does: without a
// configuration file, SKILLWARE_SKILL_PATH, then ./skills in the working
// directory and its first five parents, then the bundled skills; with
// Skillware's global config.yaml or a project .skillware.yaml, the tiers in
// resolution.order from paths.project, paths.external and
// SKILLWARE_SKILL_PATH (legacy.honor_skillware_skill_path). A wrong
// configuration file is an errdefs.Invalid error naming FILE:LINE; a root
// that is missing or names a skill or category folder instead of a root is
// reported in FoundRoots.Warnings, with what to write instead, as is a
// ./skills folder or .skillware.yaml of another user's, which the walk up
// ignores. A [Resolver]
// searches the roots in order and the first match wins. Because a local skill
// can silently shadow an official one, every shadowing is reported in
// Skill.Warnings, as are the roots' warnings. docs/ROOTS.md has the details.
package skill
