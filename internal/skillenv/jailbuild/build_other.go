//go:build !linux

package jailbuild

import (
	"context"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/egress"
	"github.com/skillbox-dev/skillbox/internal/skillenv"
)

// Builder builds environments in jails; there are none on this system.
type Builder struct {
	// Resolver is unused here (see the linux Builder).
	Resolver egress.Resolver
}

// Build refuses: building a skill's environment needs the linux jail.
func (Builder) Build(context.Context, skillenv.Job, func(string)) ([]byte, error) {
	return nil, errdefs.New(errdefs.Unsupported, "building a skill's environment needs the linux jail, which this system lacks")
}
