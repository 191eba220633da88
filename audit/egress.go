package audit

// EventEgress is one decision of a sandbox's egress proxy: a request or
// tunnel allowed (written when it ends, with byte counts), denied, cut by a
// limit, or failed upstream.
const EventEgress = "egress"

// Egress is what an egress record adds: the destination and the decision,
// never paths, queries, bodies or secret values.
type Egress struct {
	// Method is the request method; "CONNECT" for a tunnel.
	Method string `json:"method"`
	// Host and Port are the destination as requested (normalised); empty
	// for a connection refused before any request was read.
	Host string `json:"host"`
	Port int    `json:"port"`
	// Addr is the address dialled ("ip:port"), if any.
	Addr string `json:"addr,omitempty"`
	// Decision is allow, deny, limit or error (as the egress proxy decided).
	Decision string `json:"decision"`
	// Reason says why, for anything but a plain allow.
	Reason string `json:"reason,omitempty"`
	// Grant names what would allow a denied request: "--allow-net
	// HOST:PORT" or "--egress-resolve HOST=IP".
	Grant string `json:"grant,omitempty"`
	// Status is the HTTP status returned to the sandbox (0 for a tunnel
	// that was established).
	Status int `json:"status,omitempty"`
	// Intercepted is set for requests read inside an intercepted TLS tunnel.
	Intercepted bool `json:"intercepted,omitempty"`
	// BytesUp and BytesDown count body bytes (tunnel bytes for CONNECT)
	// sent to and received from the destination.
	BytesUp   int64 `json:"bytes_up"`
	BytesDown int64 `json:"bytes_down"`
	// Secrets names the bound secrets substituted into the request (names
	// only, never values).
	Secrets     []string `json:"secrets,omitempty"`
	OutsideCall bool     `json:"outside_call,omitempty"`
	// EnvBuild is the key of the skill environment whose build (pip, in the
	// build's jail) made the request; the record's Skill is the skill the
	// build was for. No call caused it: there is no params hash.
	EnvBuild string `json:"env_build,omitempty"`
	// ImageBuild is the Dockerfile (its path in the build's context)
	// whose image build made the request, from a RUN step granted hosts
	// (image build --allow-net, build_net); the record's Skill is the
	// skill built for, if any. No call caused it: there is no params hash.
	ImageBuild string `json:"image_build,omitempty"`
}
