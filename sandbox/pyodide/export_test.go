//go:build unix

package pyodide

// newTestDriver is New(Options{}) with seams: a host without some cgroup
// controllers or without the jail, or trust in test upstreams.
func newTestDriver(s seams) *Driver { return newDriver(Options{}, s) }
