package skillbox

import (
	"slices"

	"github.com/skillbox-dev/skillbox/internal/skillenv"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// CachedDigests lists the digests the Runtime holds a current sandbox and
// a validator for (tests of eviction).
func CachedDigests(r *Runtime) (sandboxes, validators []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, osb := range r.sandboxes {
		if !slices.Contains(sandboxes, osb.digest) {
			sandboxes = append(sandboxes, osb.digest)
		}
	}
	for d := range r.validators {
		validators = append(validators, d)
	}
	return sandboxes, validators
}

// WatchInterval is how often the Runtime checks skill folders.
var WatchInterval = watchInterval

// Driver returns the driver the Runtime uses for backend name (tests of
// the policy file's backends section).
func Driver(r *Runtime, name string) (sandbox.Driver, error) { return r.backends.Lookup(name) }

// WithEnvBuilder makes the Runtime build environments with b (a
// jailbuild.Builder that sees a host without cgroup controllers, say).
func WithEnvBuilder(b skillenv.Builder) Option { return func(c *config) { c.envBuilder = b } }

// SealedDigests lists the digests of the sealed copies the Runtime
// remembers having checked (tests of the seal cache).
func SealedDigests(r *Runtime) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for s := range r.sealed {
		out = append(out, s.Digest)
	}
	return out
}
