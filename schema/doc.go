// Package schema validates tool-call parameters against a skill's manifest
// `parameters` JSON Schema and exports a skill as a tool definition for the
// common agent APIs (Claude, OpenAI, Gemini, Ollama, MCP).
//
// It takes plain values — a parameters map and a [Tool] — and never reads
// files or the network: a schema's $ref may only point inside the schema
// itself, every other URL is refused at [Compile] time.
//
// Tool names are derived from the skill ID, not the manifest name:
// "category/name" becomes "category_name" (see [ToolName]), so two skills
// with the same short name in different categories do not collide in an
// agent's tool list, and the name maps back to exactly one skill.
package schema
