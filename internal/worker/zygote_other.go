//go:build !linux

package worker

import (
	"context"
	"os"

	"github.com/skillbox-dev/skillbox/errdefs"
)

// Zygote drives a zygote-mode harness; zygotes are Linux only.
type Zygote struct{}

func errNoZygote() error {
	return errdefs.New(errdefs.Unsupported, "worker: zygote mode needs Linux")
}

// ZygotePair fails: zygote mode needs Linux.
func ZygotePair() (host, child *os.File, err error) { return nil, nil, errNoZygote() }

// NewZygote fails: zygote mode needs Linux.
func NewZygote(ctrl *os.File) (*Zygote, error) { ctrl.Close(); return nil, errNoZygote() }

// Init fails: zygote mode needs Linux.
func (z *Zygote) Init(ctx context.Context, in Init) (*Reply, error) { return nil, errNoZygote() }

// Close does nothing.
func (z *Zygote) Close() error { return nil }
