package gvisor

import (
	"path/filepath"

	"github.com/skillbox-dev/skillbox/sandbox"
)

// The gvisor backend registers itself when linked in. Its strength is 0:
// auto never chooses it; --backend gvisor does.
func init() {
	sandbox.Register(sandbox.Registration{
		Name:     Name,
		Strength: 0,
		Summary:  "gVisor's runsc: a user-space kernel per sandbox (ptrace platform), read-only root, network only through the egress proxy; chosen by name only",
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
