package sandbox

import (
	"context"
	"time"
)

// EnvironmentMeasurer is implemented by an EnvironmentRunner that can
// measure what an environment it does not trust costs each call: a call's
// own process processes the environment's site directory (.pth files,
// sitecustomize) and imports the skill's third-party packages, which a
// zygote does once for a trusted environment (Spec.TrustedEnvironments).
type EnvironmentMeasurer interface {
	// MeasureEnvironment measures it for the skill of spec (whose
	// Environment is set) in the backend's sandbox, the way a call's own
	// process would, without running the skill's code: only the
	// environment's site and the packages the skill's files import (read,
	// not run) are loaded. Nothing is granted to the measurement.
	MeasureEnvironment(ctx context.Context, spec Spec) (*ImportCost, error)
}

// ImportCost is the per-call cost of an untrusted environment, as
// EnvironmentMeasurer measured it: the median of Runs fresh interpreters.
type ImportCost struct {
	// Site is processing the environment's site directory, and Imports
	// importing Modules after it.
	Site    time.Duration `json:"-"`
	Imports time.Duration `json:"-"`
	// SiteMS, ImportsMS and TotalMS are the same in milliseconds.
	SiteMS    float64 `json:"site_ms"`
	ImportsMS float64 `json:"imports_ms"`
	TotalMS   float64 `json:"total_ms"`
	// Modules are the skill's third-party imports: top-level modules its
	// files import that the environment provides.
	Modules []string `json:"modules"`
	// Failed maps each module whose import failed to why (its cost is
	// counted up to the failure).
	Failed map[string]string `json:"failed,omitempty"`
	Runs   int               `json:"runs"`
	// How says how it was measured, for people.
	How string `json:"how"`
}
