// Package egress is the host-side proxy through which a sandbox reaches the
// network hosts it was granted, and which keeps the real values of bound
// secrets out of the sandbox.
//
// A sandbox has no route to the network. Its HTTP clients are pointed at a
// [Proxy] (see [Proxy.Env]) that listens on the sandbox's own loopback — the
// jail (internal/jail), or for runsc and image builds the network namespace
// internal/netns makes, hands the listener to the host process, which calls
// [Proxy.Serve] — and every request or tunnel is decided here:
//
//   - The destination named by the request (absolute-form URL or CONNECT
//     authority) must match a [Rule] of [Config.Allow]: "host", "host:port",
//     "*.domain[:port]" (strict subdomains) or an address literal. An
//     address literal in a request only matches an address rule.
//   - The proxy resolves names itself ([Config.Resolver]) and connects only
//     to the addresses it checked, so a name cannot be re-resolved to
//     something else between check and connect (DNS rebinding). Addresses
//     in loopback, private, link-local, multicast, unique-local, carrier-
//     grade NAT, unspecified, broadcast and documentation ranges, their
//     IPv4-mapped, NAT64 and 6to4 forms, and the cloud metadata endpoints
//     are dropped unless granted by address: by an address rule, or by
//     [Config.Resolve] (--egress-resolve HOST=IP), which maps a name to fixed
//     addresses and thereby grants them.
//   - Each request is checked, including every request on a kept-alive
//     client connection and every redirect the client follows.
//   - A tunnel (CONNECT) to a name is pinned to it: the proxy reads its
//     start before a byte goes to the host. TLS must name that host in its
//     ClientHello (SNI; a missing or encrypted name is refused); plain HTTP
//     is served request by request, each Host checked; anything else is
//     refused. A tunnel to an address literal is not read.
//   - [Config.MaxConns] bounds the upstream connections over the proxy's life
//     or since [Proxy.ResetBudget], [Config.MaxBytes] the upstream bytes;
//     past them requests are refused (429) and running exchanges are cut;
//     [Config.MaxEvents] bounds the requests and tunnels (each one audited
//     decision), past which each is refused (429) without an Event, after
//     one limit Event. A proxy serving one call after another resets the
//     budget and sets the call's audit sink ([Proxy.SetAudit]) as each
//     begins.
//   - What the proxy holds lives outside the sandbox's cgroup, so the proxy
//     bounds it: [Config.MaxClientConns] client connections at once (one more
//     is answered 429 and closed), [Config.MaxBuffer] bytes buffered at once
//     for all its requests (bodies read whole, stream and decoder windows;
//     a request that would go over fails with 429), and progress deadlines
//     on every client connection ([Config.HeaderTimeout],
//     [Config.IdleTimeout], [Config.StallTimeout]) that cut a stalled
//     connection but never a slow transfer that keeps moving. Each refusal
//     is audited as a limit.
//   - Every decision is reported to [Config.Audit] (or the sink [Proxy.SetAudit]
//     set when the client connection was accepted) as an [Event]: allowed
//     exchanges when they end, with byte counts; refusals at once. Refusals
//     answer 403 with a line naming the grant that would allow the request.
//
// # Secrets
//
// A [Secret] is seen by the sandbox only as its placeholder
// ([NewPlaceholder]). In requests to the secret's hosts the proxy replaces
// the placeholder with the real value in headers, the URL path and query,
// and bodies of type application/json (and +json), x-www-form-urlencoded and
// text/*, each time encoded for where it appears; bodies up to
// [Config.MaxBodyScan] are read whole first, larger ones substituted as
// they stream. A placeholder sent to any other host is refused (403) and
// audited, as is a placeholder in plain HTTP unless [Secret.AllowHTTP].
//
// HTTPS to a host that carries a bound secret is intercepted: the proxy
// answers the CONNECT itself with a certificate minted for that host by a
// per-proxy ephemeral CA (ECDSA P-256, 24 h, name-constrained to the bound
// hosts; its key never leaves the host process), and forwards each request
// over a new TLS connection to the real host, verified against the host's
// roots ([Config.UpstreamRootCAs] in tests). The sandbox must trust
// [Proxy.CABundle] at [Config.CAFile]. Hosts without a bound secret are
// tunnelled untouched.
//
// The value never flows back: in every response from a bound host — 1xx
// informational headers, headers, redirects, trailers, bodies of any size —
// the value (raw, JSON-escaped, percent-encoded, base64 alone or inside
// longer base64) is replaced by the placeholder. Bound hosts are asked for
// identity encoding; gzip, deflate, br and zstd answers are decoded to be
// redacted, other encodings refused. Range requests are not forwarded to
// them and partial (206) answers are refused, as are protocol upgrades.
// This is a safety net against a bound host echoing the value, not a
// guarantee against one that transforms it (hashing, reversing, other
// encodings; docs/EGRESS.md lists them): a secret is bound only to hosts
// trusted with it.
package egress
