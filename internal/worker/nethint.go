package worker

import (
	"context"
	"encoding/json"
	"strings"
)

// NetAttempt is a destination the skill tried to reach during a call, as
// the harness saw it: a name it resolved or an address it connected to.
// Port is 0 when the attempt named none (gethostbyname).
type NetAttempt struct {
	Host string `json:"host"`
	Port int    `json:"port"`
}

// MaxNetAttempts bounds the attempts taken from one reply (the harness
// records at most as many).
const MaxNetAttempts = 32

type netAttemptsKey struct{}

// WithNetAttempts returns ctx asking the worker of the call made under it
// (Conn.Call) to record the destinations the skill tries to reach, which
// report receives once the call has a reply (a result or the skill's
// error). The Runtime sets it for calls in a sandbox without network,
// where every attempt fails: the attempts become warnings. They are a
// hint, not a control — the harness records them with an audit hook in
// the skill's own process, which the skill can evade or forge — so report
// must treat them as untrusted text.
func WithNetAttempts(ctx context.Context, report func([]NetAttempt)) context.Context {
	return context.WithValue(ctx, netAttemptsKey{}, report)
}

// netAttemptsFrom returns the sink WithNetAttempts put in ctx, or nil.
func netAttemptsFrom(ctx context.Context) func([]NetAttempt) {
	f, _ := ctx.Value(netAttemptsKey{}).(func([]NetAttempt))
	return f
}

// ParseNetAttempts decodes a reply's net_attempts leniently: what is not a
// list of {"host": string, "port": 0-65535} objects is dropped, as are
// empty or over-long hosts and hosts with spaces or control characters;
// duplicates are dropped, and at most MaxNetAttempts are kept.
func ParseNetAttempts(raw json.RawMessage) []NetAttempt {
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		return nil
	}
	var out []NetAttempt
	for _, it := range items {
		if len(out) == MaxNetAttempts {
			break
		}
		var a NetAttempt
		if json.Unmarshal(it, &a) != nil || a.Host == "" || len(a.Host) > 253 || a.Port < 0 || a.Port > 65535 {
			continue
		}
		if strings.ContainsFunc(a.Host, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			continue
		}
		dup := false
		for _, b := range out {
			dup = dup || b == a
		}
		if !dup {
			out = append(out, a)
		}
	}
	return out
}
