package skillbox

import "slices"

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
