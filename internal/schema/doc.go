// Package schema validates tool-call parameters against a skill's manifest
// `parameters` JSON Schema and exports a skill as a tool definition for the
// common agent APIs (Claude, OpenAI, Gemini, Ollama, MCP).
//
// It takes plain values — a parameters map and a [Tool] — and never reads
// files or the network: a schema's $ref may only point inside the schema
// itself, every other URL is refused at [Compile] time.
//
// Tool names are derived from the skill ID, not the manifest name:
// "category/name" becomes "category_name" (see [ToolName]). Skillware's own
// adapters (SkillLoader.to_claude_tool, to_gemini_tool) pass the manifest's
// name, which in Skillware's catalogue is the id itself
// ("finance/wallet_screening"); no agent API accepts a "/" in a tool name
// (Claude and OpenAI: ^[a-zA-Z0-9_-]{1,64}$; Gemini adds "." and ":"; MCP
// "_", "-" and "."), so such a tool would be refused. "_" keeps the
// category, so two skills with the same short name in different
// categories do not collide in an agent's tool list, and the name maps
// back to exactly one skill. The description is the manifest's, byte for
// byte, as Skillware passes it.
//
// Each format keeps to what its provider documents for a tool definition:
//   - claude: {name, description, input_schema}, input_schema an object
//     schema (JSON Schema, passed through);
//   - openai: {type: "function", function: {name, description,
//     parameters}}, parameters an object schema (passed through);
//   - gemini: a function declaration {name, description, parameters}
//     whose parameters are in the Gemini API's Schema subset of OpenAPI
//     3.0: upper-case types, "nullable" for null, anyOf (oneOf becomes
//     anyOf), local $ref inlined, and no additionalProperties, allOf, not,
//     const, type lists or other keywords the API rejects; a skill without
//     parameters has no "parameters" (the API rejects an OBJECT without
//     properties). Dropping a keyword only loosens what the model reads:
//     skillbox validates every call against the manifest's whole schema;
//   - mcp: {name, description, inputSchema, outputSchema?}, both object
//     schemas;
//   - ollama: a system-prompt text for models without native tool calling
//     (Ollama's tools API takes the openai format).
//
// testdata/golden holds each format's output for the fixtures in testdata
// (go test -update rewrites it); the Python client's tests compare its own
// exports with the same files.
package schema
