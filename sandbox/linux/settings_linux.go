package linux

import (
	"fmt"
	"runtime"
	"time"

	"github.com/skillbox-dev/skillbox/sandbox"
)

// maxPool bounds pool_size and min_idle in the policy file: far above any
// real pool, low enough to catch a stray digit.
const maxPool = 1024

// optionsFrom decodes the backend's section of the policy file
// (backends: linux: {...}) into Options. Only settings that shape
// performance are offered: none weakens a wall (a missing layer is run
// without only by --best-effort), and the uid, the interpreter and the
// scratch size stay code-only.
//
//	pool_size: 4        # PoolSize: zygotes (or spares) per sandbox (default 2×CPUs)
//	min_idle: 1         # MinIdle: zygotes (exec auto and prestart: spares) kept warm (default 1; 0: none)
//	idle_timeout: 30s   # IdleTimeout: life of a surplus idle zygote (default 30s)
//	release_after: 5m   # ReleaseAfter: no call for this long closes every zygote (default 5m; or never)
//	exec: auto          # Exec: auto (default: a spare when one is ready, else a zygote), zygote (a fork of a zygote per call), prestart (a new jail per call, started ahead) or cold (a new jail per call)
//	prefork: true       # !NoPrefork: fork the next child while idle (default true)
func optionsFrom(cfg sandbox.Config) (Options, error) {
	var o Options
	minIdleSet := false
	err := cfg.Decode(map[string]func(sandbox.Setting) error{
		"pool_size": func(s sandbox.Setting) (err error) {
			o.PoolSize, err = s.Int(1, maxPool)
			return err
		},
		"min_idle": func(s sandbox.Setting) error {
			n, err := s.Int(0, maxPool)
			if n == 0 {
				n = -1 // Options' "none"
			}
			o.MinIdle, minIdleSet = n, err == nil
			return err
		},
		"idle_timeout": func(s sandbox.Setting) (err error) {
			o.IdleTimeout, err = s.Duration()
			return err
		},
		"release_after": func(s sandbox.Setting) (err error) {
			if s.Kind == "str" && s.Value == "never" {
				o.ReleaseAfter = -1
				return nil
			}
			if o.ReleaseAfter, err = s.Duration(); err != nil {
				return fmt.Errorf("%v, or never", err)
			}
			return nil
		},
		"exec": func(s sandbox.Setting) (err error) {
			o.Exec, err = s.OneOf(ExecAuto, ExecZygote, ExecPrestart, ExecCold)
			return err
		},
		"prefork": func(s sandbox.Setting) error {
			on, err := s.Bool()
			o.NoPrefork = !on
			return err
		},
	})
	if err != nil {
		return Options{}, err
	}
	pool := o.PoolSize
	if pool == 0 {
		pool = defaultPoolSize()
	}
	if minIdleSet && o.MinIdle > pool {
		return Options{}, cfg.Errorf("min_idle", "%d is more than pool_size (%d)", o.MinIdle, pool)
	}
	return o, nil
}

// releaseAfter spells ReleaseAfter as the policy file does.
func releaseAfter(d time.Duration) string {
	if d < 0 {
		return "never"
	}
	return d.String()
}

func defaultPoolSize() int { return 2 * runtime.NumCPU() }

// Config returns the effective settings, defaults included, as the policy
// file spells them (sandbox.Configurable).
func (d *Driver) Config() map[string]any {
	return map[string]any{
		"pool_size":     d.opts.PoolSize,
		"min_idle":      max(d.opts.MinIdle, 0),
		"idle_timeout":  d.opts.IdleTimeout.String(),
		"release_after": releaseAfter(d.opts.ReleaseAfter),
		"exec":          d.opts.Exec,
		"prefork":       !d.opts.NoPrefork,
	}
}
