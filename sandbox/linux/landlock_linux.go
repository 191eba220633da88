package linux

import (
	"fmt"

	"github.com/skillbox-dev/skillbox/internal/landlock"
)

// applyLandlock restricts the thread (and the exec'd program) to reading
// the jail's runtime, bundle and /proc, and writing only /scratch and the
// /dev nodes. It handles every right the kernel's ABI knows, exactly (never
// best-effort): with ABI >= 4 no TCP rule is added, so bind and connect
// are denied; with ABI >= 6 abstract unix sockets and signals are scoped
// to the jail.
func applyLandlock(cfg *jailConfig) error {
	abi, err := landlock.ABI()
	if err != nil {
		return err
	}
	var r landlock.Rules
	for _, op := range cfg.Mounts {
		if op.Kind != "bind" {
			continue
		}
		if op.File {
			r.ROFiles = append(r.ROFiles, op.Dst)
		} else {
			r.RODirs = append(r.RODirs, op.Dst)
		}
	}
	r.RODirs = append(r.RODirs, jailSkill, "/proc")
	r.RWDirs = []string{jailScratch}
	r.RWFiles = []string{"/dev/null", "/dev/zero", "/dev/random", "/dev/urandom"}
	if !cfg.NoNetwork {
		// Network grants are refused before a jail starts (no egress
		// proxy yet), so this cannot happen; fail closed if it does.
		return fmt.Errorf("network grants are not supported")
	}
	return landlock.Restrict(landlock.HandledFor(abi), r)
}
