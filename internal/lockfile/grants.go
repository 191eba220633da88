package lockfile

import (
	"slices"
	"time"

	"github.com/skillbox-dev/skillbox/policy"
)

// GrantsOf is the effective grant of d as a lockfile records it: what the
// call was allowed, with the default limits applied.
func GrantsOf(d *policy.Decision) Grants {
	l := d.Spec.Limits.WithDefaults()
	g := Grants{Env: slices.Clone(d.EnvNames), Read: slices.Clone(d.ReadPaths), Timeout: l.Timeout.String(), Memory: l.Memory}
	for _, hp := range d.Spec.Network {
		g.Network = append(g.Network, hp.String())
	}
	g.Resolve = d.Spec.ResolveList()
	g.Secrets = slices.Clone(d.SecretNames)
	return g
}

// Limits returns the locked timeout and memory, zero where the entry
// records none (or a timeout that does not parse).
func (g Grants) Limits() (timeout time.Duration, memory int64) {
	if t, err := time.ParseDuration(g.Timeout); err == nil && t > 0 {
		timeout = t
	}
	return timeout, max(g.Memory, 0)
}
