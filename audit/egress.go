package audit

import (
	"fmt"
	"net"
	"slices"
	"strconv"

	"github.com/skillbox-dev/skillbox/egress"
)

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
	// Decision is allow, deny, limit or error (egress.Decision*).
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
}

// EgressRecord maps an egress.Event to an audit record (Event "egress").
// The caller fills in what the proxy does not know: the skill, version,
// digest, tier, backend and the call's params hash, which ties the record
// to its call record.
func EgressRecord(ev egress.Event) Record {
	r := Record{
		Time:  ev.Time.UTC(),
		Event: EventEgress,
		Egress: &Egress{
			Method: ev.Method, Host: ev.Host, Port: ev.Port, Addr: ev.Addr,
			Decision: ev.Decision, Reason: ev.Reason, Grant: ev.Grant, Status: ev.Status,
			Intercepted: ev.Intercepted, BytesUp: ev.BytesUp, BytesDown: ev.BytesDown,
			Secrets: slices.Clone(ev.Secrets),
		},
	}
	dest := net.JoinHostPort(ev.Host, strconv.Itoa(ev.Port))
	r.Detail = fmt.Sprintf("%s %s %s (up %d B, down %d B)", ev.Decision, ev.Method, dest, ev.BytesUp, ev.BytesDown)
	switch ev.Decision {
	case egress.DecisionAllow:
		r.Outcome = "ok"
	case egress.DecisionDeny:
		r.Outcome, r.ErrorKind = "error", "denied"
	case egress.DecisionLimit:
		r.Outcome, r.ErrorKind = "error", "limit"
	default:
		r.Outcome, r.ErrorKind = "error", "unavailable"
	}
	if r.Outcome == "error" {
		r.Error = ev.Reason
		if ev.Grant != "" {
			r.Error += " (grant with " + ev.Grant + ")"
		}
		if r.Error == "" {
			r.Error = ev.Decision
		}
	}
	return r
}
