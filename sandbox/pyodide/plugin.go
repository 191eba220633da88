//go:build unix

package pyodide

import "github.com/skillbox-dev/skillbox/sandbox"

func init() {
	sandbox.Register(sandbox.Registration{
		Name:     Name,
		Strength: 50, // between process (0) and linux (100)
		Summary:  "Python in WebAssembly (Pyodide) on Deno with every permission denied; single-use workers",
		New: func(cfg sandbox.Config) (sandbox.Driver, error) {
			opts, err := optionsFrom(cfg)
			if err != nil {
				return nil, err
			}
			return New(opts), nil
		},
	})
}
