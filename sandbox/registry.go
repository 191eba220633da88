package sandbox

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/skillbox-dev/skillbox/errdefs"
)

// Auto is the backend name that picks the strongest available isolating driver.
const Auto = "auto"

// Registration describes a driver to the registry.
type Registration struct {
	// Name is what --backend selects.
	Name string
	// Strength orders isolating drivers for "auto": the highest available
	// wins. Drivers with 0 are never chosen by auto: those that isolate
	// nothing (process), and gvisor, which runs only when asked for.
	Strength int
	// Summary is one line for `doctor`.
	Summary string
	// New constructs the driver from its section of the policy file
	// (cfg.Settings is empty when there is none: every default). It decodes
	// and validates cfg itself (Config.Decode), returning errdefs.Invalid
	// naming FILE:LINE for a bad setting, and offers only settings that
	// cannot weaken isolation. It should not probe the host; Probe does.
	New func(cfg Config) (Driver, error)
}

var (
	mu       sync.Mutex
	registry = map[string]Registration{}
	drivers  = map[string]Driver{}
)

// Register adds a driver. Backends call it from an init function in their
// plugin package; registering a name twice panics.
func Register(r Registration) {
	mu.Lock()
	defer mu.Unlock()
	if r.Name == "" || r.Name == Auto || r.New == nil {
		panic(fmt.Sprintf("sandbox: bad registration %q", r.Name))
	}
	if _, dup := registry[r.Name]; dup {
		panic("sandbox: driver registered twice: " + r.Name)
	}
	registry[r.Name] = r
}

// List returns every registration, strongest first.
func List() []Registration {
	mu.Lock()
	defer mu.Unlock()
	out := make([]Registration, 0, len(registry))
	for _, r := range registry {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Strength != out[j].Strength {
			return out[i].Strength > out[j].Strength
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Lookup returns the driver registered as name, constructed once with no
// settings (its defaults) and shared by every caller in the process.
// An unknown name is errdefs.Invalid and lists the known ones.
func Lookup(name string) (Driver, error) {
	mu.Lock()
	defer mu.Unlock()
	if d, ok := drivers[name]; ok {
		return d, nil
	}
	r, ok := registry[name]
	if !ok {
		return nil, unknown(name, true)
	}
	d, err := r.New(Config{Backend: name})
	if err != nil {
		return nil, errdefs.Wrap(errdefs.Unavailable, err, "backend "+name)
	}
	drivers[name] = d
	return d, nil
}

// unknown is the error for a name no backend registered, listing the
// known ones (and auto, where it may be given). mu is held.
func unknown(name string, auto bool) error {
	names := make([]string, 0, len(registry)+1)
	for n := range registry {
		names = append(names, n)
	}
	if auto {
		names = append(names, Auto)
	}
	slices.Sort(names)
	return errdefs.New(errdefs.Invalid, "unknown backend %q (known: %s)", name, strings.Join(names, ", "))
}

// Backends are the drivers of one user of the registry (a skillbox
// Runtime): each backend with a section in the policy file is constructed
// once, by its own New, with that section; every other backend is the
// process-wide default driver (Lookup). A nil *Backends has no sections.
type Backends struct {
	configured map[string]Driver
}

// NewBackends constructs a driver for each section of configs (by backend
// name; the policy file's backends section), so that an unknown backend or
// a bad setting is an errdefs.Invalid error now, naming FILE:LINE, rather
// than on the first call. No driver probes the host here.
func NewBackends(configs map[string]Config) (*Backends, error) {
	b := &Backends{configured: map[string]Driver{}}
	names := make([]string, 0, len(configs))
	for n := range configs {
		names = append(names, n)
	}
	slices.Sort(names)
	var errs []error
	for _, name := range names {
		cfg := configs[name]
		cfg.Backend = name
		r, err := registration(name)
		if err != nil {
			errs = append(errs, cfg.Errorf("", "%v", err))
			continue
		}
		d, err := r.New(cfg)
		if err != nil {
			if errdefs.KindOf(err) != errdefs.Invalid {
				err = errdefs.Wrap(errdefs.Unavailable, err, "backend "+name)
			}
			errs = append(errs, err)
			continue
		}
		b.configured[name] = d
	}
	if err := joinInvalid(errs); err != nil {
		return nil, err
	}
	return b, nil
}

// registration returns the registration of name, or the error for an
// unknown backend in a policy file (auto is no backend there).
func registration(name string) (Registration, error) {
	mu.Lock()
	defer mu.Unlock()
	if r, ok := registry[name]; ok {
		return r, nil
	}
	return Registration{}, unknown(name, false)
}

// Lookup returns the driver registered as name: the one built with its
// section, else the shared default (the package's Lookup).
func (b *Backends) Lookup(name string) (Driver, error) {
	if b != nil {
		if d, ok := b.configured[name]; ok {
			return d, nil
		}
	}
	return Lookup(name)
}

// Choose resolves name to a driver; "auto" (or "") picks the strongest
// isolating driver whose Probe says it is available — or, when bestEffort
// (the operator's explicit opt-in), that could run without the layers it
// lacks. If none can, the error (errdefs.Unavailable) says why each one
// cannot, and that the process backend must be chosen explicitly.
func Choose(ctx context.Context, name string, bestEffort bool) (Driver, error) {
	return (*Backends)(nil).Choose(ctx, name, bestEffort)
}

// Choose is the package's Choose over b's drivers.
func (b *Backends) Choose(ctx context.Context, name string, bestEffort bool) (Driver, error) {
	if name != "" && name != Auto {
		return b.Lookup(name)
	}
	var why, degraded []string
	for _, r := range List() {
		if r.Strength <= 0 {
			continue
		}
		d, err := b.Lookup(r.Name)
		if err != nil {
			why = append(why, err.Error())
			continue
		}
		c := d.Probe(ctx)
		if c.Available || bestEffort && c.BestEffort {
			return d, nil
		}
		if c.BestEffort {
			degraded = append(degraded, r.Name)
		}
		// A reason that already names its backend is not prefixed again.
		why = append(why, r.Name+": "+strings.TrimPrefix(c.Reason, "backend "+r.Name+": "))
	}
	msg := "no isolating backend is available on this host"
	if len(why) > 0 {
		msg += " (" + strings.Join(why, "; ") + ")"
	}
	return nil, errdefs.New(errdefs.Unavailable, "%s; %s", msg, fallbacks(degraded))
}

// fallbacks says what an operator can do when no isolating backend is
// fully available, weakest isolation last: --best-effort, when some
// backends (degraded, by name) can run without the layers they lack and
// keep the others; then the process backend, which isolates nothing.
func fallbacks(degraded []string) string {
	process := "--backend process runs without any isolation, for trusted skills only"
	if len(degraded) == 0 {
		return process
	}
	return fmt.Sprintf("--best-effort runs %s without the missing layers and keeps the others (each missing one is reported on every call); as a last resort, %s",
		strings.Join(degraded, " or "), process)
}
