//go:build unix

package pyodide

import "github.com/skillbox-dev/skillbox/sandbox"

// maxWorkers bounds idle and max_workers in the policy file: a worker
// holds about 200 MB, so more than this is a typo.
const maxWorkers = 1024

// maxRecycle bounds recycle: a host process lives at most this many calls.
const maxRecycle = 1_000_000

// optionsFrom decodes the backend's section of the policy file
// (backends: pyodide: {...}) over the registry's defaults (Install on).
// Only settings that shape performance and installation are offered: none
// weakens a wall, and the cache folder stays code-only (it holds the
// runtime every worker runs).
//
//	idle: 1            # Idle: Web Workers each host process keeps started (default 1)
//	max_workers: 4     # MaxWorkers: host processes (calls at once) per sandbox (default 4)
//	recycle: 500       # Recycle: single-use calls per host process before it is replaced (default 500)
//	install: true      # Install: install Deno and Pyodide with npm if missing (default true)
func optionsFrom(cfg sandbox.Config) (Options, error) {
	o := Options{Install: true}
	err := cfg.Decode(map[string]func(sandbox.Setting) error{
		"idle": func(s sandbox.Setting) (err error) {
			o.Idle, err = s.Int(1, maxWorkers)
			return err
		},
		"max_workers": func(s sandbox.Setting) (err error) {
			o.MaxWorkers, err = s.Int(1, maxWorkers)
			return err
		},
		"recycle": func(s sandbox.Setting) (err error) {
			o.Recycle, err = s.Int(1, maxRecycle)
			return err
		},
		"install": func(s sandbox.Setting) (err error) {
			o.Install, err = s.Bool()
			return err
		},
	})
	if err != nil {
		return Options{}, err
	}
	workers := o.MaxWorkers
	if workers == 0 {
		workers = defaultMaxWorkers
	}
	if o.Idle > workers {
		return Options{}, cfg.Errorf("idle", "%d is more than max_workers (%d)", o.Idle, workers)
	}
	return o, nil
}

// Config returns the effective settings, defaults included, as the policy
// file spells them (sandbox.Configurable).
func (d *Driver) Config() map[string]any {
	return map[string]any{
		"idle":        d.opts.Idle,
		"max_workers": d.opts.MaxWorkers,
		"recycle":     d.opts.Recycle,
		"install":     d.opts.Install,
	}
}
