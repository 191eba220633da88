package linux

import (
	"path/filepath"

	"github.com/skillbox-dev/skillbox/sandbox"
)

// The linux backend registers itself when linked in; "auto" prefers it.
func init() {
	sandbox.Register(sandbox.Registration{
		Name:     Name,
		Strength: 100,
		Summary:  "Linux namespaces, read-only minimal root, Landlock, seccomp, cgroups; zygote-forked single-use calls",
		New: func(cfg sandbox.Config) (sandbox.Driver, error) {
			opts, err := optionsFrom(cfg)
			if err != nil {
				return nil, err
			}
			if cfg.CacheDir != "" {
				opts.ImageCache = filepath.Join(cfg.CacheDir, "images")
			}
			return New(opts), nil
		},
	})
}
