package jail

import (
	"math/rand/v2"
	"sync/atomic"

	"github.com/skillbox-dev/skillbox/internal/jail/stage"
)

// ID is the uid and gid a jail's program runs as when the host process is
// root (a non-root host maps its own id to 0 in a user namespace instead).
// It must own nothing on the host: the host's nobody (65534) may own
// files, and whatever an id owns, a program running as it may chmod, chown
// away or signal. 0x7FFE0000 lies below 2^31 (ids above are mishandled by
// tools that read them as signed) and above systemd's ranges for container
// ids (524288-1879048191) and dynamic users (61184-65519), where no
// distribution, useradd or idmap hands out ids.
const ID = 0x7FFE0000

// IDs is how many ids from ID on are jails'. A jail runs as one of them
// (NewID), so that what the kernel counts per user — inotify instances and
// watches, pipe buffer pages, pending signals, RLIMIT_NPROC where there is
// no pids cgroup — is counted per jail: one skill holding every inotify
// instance its user may have no longer denies them to the others'. The
// last id, ID+IDs-1, is still below 2^31.
const IDs = 1 << 16

// IsID reports whether id is one of the jails' ids.
func IsID(id int) bool { return id >= ID && id < ID+IDs }

// nextID is the offset from ID of the next jail's id in this process,
// from a random start, so that two processes' jails rarely share one.
var nextID atomic.Uint32

func init() { nextID.Store(rand.Uint32N(IDs)) }

// NewID returns the id of a new jail: this process's jails take them in
// turn, 65,536 jails apart before one comes again.
func NewID() int { return ID + int(nextID.Add(1)%IDs) }

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
