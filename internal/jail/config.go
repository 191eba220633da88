package jail

import "github.com/skillbox-dev/skillbox/internal/jail/stage"

// ID is the uid and gid a jail's program runs as when the host process is
// root (a non-root host maps its own id to 0 in a user namespace instead).
// It must own nothing on the host: the host's nobody (65534) may own
// files, and whatever an id owns, a program running as it may chmod, chown
// away or signal. 0x7FFE0000 lies below 2^31 (ids above are mishandled by
// tools that read them as signed) and above systemd's ranges for container
// ids (524288-1879048191) and dynamic users (61184-65519), where no
// distribution, useradd or idmap hands out ids.
const ID = 0x7FFE0000

// Paths inside every jail.
const (
	// SkillDir shows Spec.Bundle, read-only and noexec.
	SkillDir = stage.SkillDir
	// ScratchDir is the private noexec tmpfs: the program's cwd, and the
	// HOME and TMPDIR a root provider gives it.
	ScratchDir = stage.ScratchDir
)

// ProxyAddr is where a jail's egress proxy listens, inside the jail (its
// loopback; the jail's network namespace has nothing else).
const ProxyAddr = "127.0.0.1:3128"

// OwnDirs are the jail's own folders: no bind may cover or sit in them.
func OwnDirs() []string { return []string{SkillDir, ScratchDir, "/proc", "/dev"} }

// TmpfsMount is an empty, writable tmpfs of at most Bytes at Path
// (stage.TmpfsMount).
type TmpfsMount = stage.TmpfsMount

// config is what the host sends the init stage (stage.Config).
type config = stage.Config

// egressJail is the jail's side of a network grant (stage.EgressJail).
type egressJail = stage.EgressJail
