package gvisor

import "github.com/skillbox-dev/skillbox/sandbox"

// optionsFrom decodes the backend's section of the policy file
// (backends: gvisor: {...}) into Options. Only the platform is offered:
// both platforms run the same sentry behind the same walls. The runsc
// binary, the interpreter and the folders stay code-only.
//
//	platform: ptrace    # Platform: ptrace (default) or kvm (probed first, within 10 s)
func optionsFrom(cfg sandbox.Config) (Options, error) {
	var o Options
	err := cfg.Decode(map[string]func(sandbox.Setting) error{
		"platform": func(s sandbox.Setting) (err error) {
			o.Platform, err = s.OneOf(PlatformPtrace, PlatformKVM)
			return err
		},
	})
	return o, err
}

// Config returns the effective settings, defaults included, as the policy
// file spells them (sandbox.Configurable).
func (d *Driver) Config() map[string]any {
	return map[string]any{"platform": d.opts.Platform}
}
