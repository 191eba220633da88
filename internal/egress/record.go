package egress

import (
	"fmt"
	"net"
	"slices"
	"strconv"

	"github.com/skillbox-dev/skillbox/audit"
)

// Record maps the event to an audit record (Event "egress"). The caller
// fills in what the proxy does not know: the skill, version, digest, tier,
// backend and the call's params hash, which ties the record to its call
// record (or, for a build, what was built).
func (ev Event) Record() audit.Record {
	e := ev.Egress
	e.Secrets = slices.Clone(e.Secrets)
	r := audit.Record{Time: ev.Time.UTC(), Event: audit.EventEgress, Egress: &e}
	if ev.Host == "" {
		// Refused before a request was read (a client connection over the
		// limit): there is no destination to name.
		r.Detail = fmt.Sprintf("%s a connection before any request: %s", ev.Decision, ev.Reason)
	} else {
		dest := net.JoinHostPort(ev.Host, strconv.Itoa(ev.Port))
		r.Detail = fmt.Sprintf("%s %s %s (up %d B, down %d B)", ev.Decision, ev.Method, dest, ev.BytesUp, ev.BytesDown)
	}
	switch ev.Decision {
	case DecisionAllow:
		r.Outcome = "ok"
	case DecisionDeny:
		r.Outcome, r.ErrorKind = "error", "denied"
	case DecisionLimit:
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
