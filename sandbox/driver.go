package sandbox

import (
	"context"
	"slices"
)

// Driver is one backend.
type Driver interface {
	// Name is the backend's registered name ("process", "linux", ...).
	Name() string
	// Probe reports what this host lets the driver do. It is cheap enough to
	// call for every `doctor` and caches nothing the host may change.
	Probe(ctx context.Context) Capabilities
	// Open prepares a sandbox for spec. It fails with errdefs.Unsupported
	// naming the first required feature the driver cannot enforce, and with
	// errdefs.Unavailable naming a missing isolation layer (unless
	// spec.BestEffort). No skill code runs before Open succeeds.
	// A backend may import the skill in Open, ahead of the first call
	// (inside the sandbox): a skill that fails to load then fails Open,
	// and the error carries what it printed while it was imported
	// (errdefs.Output), as Call's does when the import is the call's.
	Open(ctx context.Context, spec Spec) (Sandbox, error)
}

// Sandbox runs calls for one Spec. It is safe for concurrent use.
type Sandbox interface {
	// Call runs one call. It honours ctx cancellation and the Spec's timeout
	// by killing the call's whole process tree. A failed call may return,
	// beside its error, a Result holding what the skill printed before it
	// failed (Stdout, Stderr) and warnings; its Value is then nil. A call
	// whose worker failed before the call (the skill's import) returns no
	// Result: its error carries that output (errdefs.Output).
	Call(ctx context.Context, req Request) (*Result, error)
	// Close releases everything the sandbox holds (workers, mounts, cgroups).
	Close() error
}

// Capabilities is what a driver can do on this host.
type Capabilities struct {
	// Available says whether the driver can run at all here.
	Available bool `json:"available"`
	// Reason says why not, when not available.
	Reason string `json:"reason,omitempty"`
	// BestEffort says that, although not Available, the driver could run a
	// Spec with BestEffort set, without the missing layers (each reported
	// on every call). Only an explicit operator opt-in uses it.
	BestEffort bool `json:"best_effort,omitempty"`
	// Isolating is false for drivers that isolate nothing (process).
	Isolating bool `json:"isolating"`
	// Enforces lists the features the driver enforces on this host.
	Enforces []Feature `json:"enforces"`
	// Layers reports each isolation layer the driver uses, and its state.
	Layers []Layer `json:"layers,omitempty"`
}

// Layer is one isolation mechanism and whether this host provides it.
type Layer struct {
	Name      string `json:"name"`
	Available bool   `json:"available"`
	// Detail says what was found or why it is missing.
	Detail string `json:"detail,omitempty"`
}

// Has reports whether c enforces f.
func (c Capabilities) Has(f Feature) bool { return slices.Contains(c.Enforces, f) }

// Layer returns the layer named name, or an unavailable Layer of that name
// when the probe did not report it.
func (c Capabilities) Layer(name string) Layer {
	for _, l := range c.Layers {
		if l.Name == name {
			return l
		}
	}
	return Layer{Name: name}
}

// AllFeatures returns every Feature this package defines, in a fixed order
// (for doctor output and for tests that check refusals).
func AllFeatures() []Feature {
	return []Feature{
		FeatureTimeout, FeatureMemory, FeaturePids, FeatureCPU, FeatureOutputCap,
		FeatureEnvScrub, FeatureNoNetwork, FeatureNetAllowlist, FeatureSecretBinding,
		FeatureFSIsolation, FeatureProcIsolation, FeatureKernelHardened,
	}
}
