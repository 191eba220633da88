// Package examples holds the example skills bundled with skillbox, in
// Skillware format, as the root of bundled skills.
//
// The skills live in skills/<category>/<name>/, each with manifest.yaml,
// skill.py, instructions.md and card.json, and any sibling modules and data
// files the skill reads.
package examples

import "embed"

// Skills is the tree of bundled skills; its root holds one folder, "skills".
//
// The pattern is "skills", not "all:skills", on purpose: without "all:",
// go:embed leaves out every file and folder whose name begins with "." or
// "_", which keeps __pycache__ (created whenever someone runs a skill with
// Python in the source tree), .DS_Store and editor files out of the binary.
// The price: a skill module whose name begins with "_" (including
// __init__.py) is not embedded; bundled skills must not use such names,
// and TestBundledSkills checks the tree.
//
//go:embed skills
var Skills embed.FS
