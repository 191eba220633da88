package process

import "github.com/skillbox-dev/skillbox/sandbox"

func init() {
	sandbox.Register(sandbox.Registration{
		Name:     Name,
		Strength: 0, // isolates nothing: never chosen by auto
		Summary:  "plain subprocess, scrubbed environment; NO isolation (trusted skills only)",
		New: func(cfg sandbox.Config) (sandbox.Driver, error) {
			// No settings: any key in its section is an error.
			if err := cfg.Decode(nil); err != nil {
				return nil, err
			}
			return Driver{}, nil
		},
	})
}
