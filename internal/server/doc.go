// Package server serves skills to agents over the Model Context Protocol
// (stdio and streamable HTTP, with the official Go SDK) and over a small
// JSON HTTP API.
//
// A [Server] wraps a [skillbox.Runtime] and one set of operator grants
// ([skillbox.CallOptions]) that applies to every call it runs; it adds no
// policy of its own. Its catalogue is the runnable skills of the runtime's
// roots at the moment [New] ran: each becomes an MCP tool named
// [schema.ToolName] of its id, an MCP prompt of the same name and an MCP
// resource skillbox://skills/{id}/instructions carrying instructions.md
// followed by the manifest's constitution. Callers can reach only skills in
// the catalogue, by id: never a folder path.
//
// Over HTTP, [Server.Handler] mounts MCP at /mcp and the API under /v1/:
//
//	GET  /v1/health
//	GET  /v1/skills
//	GET  /v1/skills/{category}/{name}
//	GET  /v1/skills/{category}/{name}/schema?format=claude|openai|gemini|ollama|mcp
//	POST /v1/skills/{category}/{name}/call   (body: the params object)
//
// A call answers with the envelope of `skillbox run --json`. The handler
// checks a bearer token when one is configured; on a loopback connection it
// refuses a Host or Origin that is not a loopback name or one of
// [Config.AllowHosts] (DNS rebinding). It answers 429 when
// [Config.MaxConcurrent] calls are in flight (without reading the body),
// taking a call's slot once its body is in and freeing it before the
// answer is written; bounds each body in size ([Config.MaxBodyBytes]) and
// time ([Config.BodyReadTimeout], [MinBodyRate]), the time a call's answer
// may take to leave (the same pace; on /mcp, each write of the SDK's
// answer to a POST) and all bodies held at once
// ([Config.MaxBodyMemory]); refuses JSON-RPC batches on /mcp; refuses
// cross-origin browser requests and logs every request with log/slog.
// [Server.Serve] refuses to listen beyond loopback without a token, bounds
// header reads ([Config.ReadHeaderTimeout]) and open connections
// ([Config.MaxConns]), and shuts down gracefully. Live MCP sessions are
// bounded ([Config.MaxSessions]) and end when idle
// ([Config.SessionIdleTimeout]).
package server
