package process

import "github.com/skillbox-dev/skillbox/sandbox"

func init() {
	sandbox.Register(sandbox.Registration{
		Name:     Name,
		Strength: 0, // isolates nothing: never chosen by auto
		Summary:  "plain subprocess, scrubbed environment; NO isolation (trusted skills only)",
		New:      func() (sandbox.Driver, error) { return Driver{}, nil },
	})
}
