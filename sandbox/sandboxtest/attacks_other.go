//go:build !linux

package sandboxtest

import (
	"testing"

	"github.com/skillbox-dev/skillbox/sandbox"
)

// Attacks lists the corpus entries the suite knows (none off Linux).
func Attacks() map[string]string { return nil }

// RunAttacks skips: the corpus and its host-side checks are Linux-only.
func RunAttacks(t *testing.T, d sandbox.Driver, opts Options) {
	t.Skip("the attack corpus runs on Linux only")
}

type hostState struct{}

func snapshotHost(t *testing.T) *hostState { return nil }

func checkHost(t *testing.T, before *hostState) {}
