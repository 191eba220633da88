package audit

// EventEgress is one decision of a sandbox's egress proxy: a request or
// tunnel allowed (written when it ends, with byte counts), denied, cut by a
// limit, or failed upstream.
const EventEgress = "egress"

// Egress is what an egress record adds: the destination and the decision,
// never paths, queries, bodies or secret values.
type Egress struct {
	Method string `json:"method"`
	Host   string `json:"host"`
	Port   int    `json:"port"`
	// Addr is the address dialled, if any.
	Addr string `json:"addr,omitempty"`
	// Decision is allow, deny, limit or error (as the egress proxy decided).
	Decision string `json:"decision"`
	Reason   string `json:"reason,omitempty"`
	// Grant names what would allow a denied request.
	Grant       string `json:"grant,omitempty"`
	Status      int    `json:"status,omitempty"`
	Intercepted bool   `json:"intercepted,omitempty"`
	BytesUp     int64  `json:"bytes_up"`
	BytesDown   int64  `json:"bytes_down"`
	// Secrets names the bound secrets substituted into the request.
	Secrets []string `json:"secrets,omitempty"`
	// OutsideCall marks a decision no call caused: made while the sandbox
	// started (a warm skill's import, say) or between calls. Such a record
	// names the skill, digest and backend but carries no params hash.
	OutsideCall bool `json:"outside_call,omitempty"`
	// EnvBuild is the key of the skill environment whose build (pip, in the
	// build's jail) made the request; the record's Skill is the skill the
	// build was for. No call caused it: there is no params hash.
	EnvBuild string `json:"env_build,omitempty"`
}
