package stage

// Paths inside every jail.
const (
	// SkillDir shows the bundle, read-only and noexec.
	SkillDir = "/skill"
	// ScratchDir is the private noexec tmpfs: the program's cwd, and the
	// HOME and TMPDIR a root provider gives it.
	ScratchDir = "/scratch"
)

// Config is what the host sends the init stage (as one frame on its
// config socket).
type Config struct {
	// Mounts build the read-only part of the root.
	Mounts []MountOp `json:"mounts"`
	// Bundle is the host path shown read-only at SkillDir ("": none).
	Bundle string `json:"bundle"`
	// ScratchBytes caps the ScratchDir tmpfs.
	ScratchBytes int64 `json:"scratch_bytes"`
	// UID and GID are the unprivileged ids the program runs as. In a user
	// namespace (non-root host user) they are ignored: the only mapped id
	// is 0, which owns nothing outside and has no capabilities.
	UID    int  `json:"uid"`
	GID    int  `json:"gid"`
	UserNS bool `json:"userns"`
	// Argv and Env are the program's; Argv[0] is an absolute path.
	Argv []string `json:"argv"`
	Env  []string `json:"env"`
	// Nproc sets RLIMIT_NPROC when non-zero (only without a pids cgroup:
	// the rlimit counts every process of the uid, which jails share).
	Nproc int `json:"nproc,omitempty"`
	// Landlock and Seccomp say whether to apply those layers (false only
	// in best-effort runs on hosts without them).
	Landlock bool `json:"landlock"`
	Seccomp  bool `json:"seccomp"`
	// ProcFull mounts all of /proc, host facts included, instead of its
	// process subset (best effort on kernels before 5.8).
	ProcFull bool `json:"proc_full,omitempty"`
	// BundleBind binds the bundle at SkillDir instead of showing it
	// through an overlay, so its host path shows in /proc/self/mountinfo
	// (best effort on kernels without overlayfs).
	BundleBind bool `json:"bundle_bind,omitempty"`
	// NoNetwork makes Landlock deny TCP bind/connect (belt to the empty
	// network namespace).
	NoNetwork bool `json:"no_network"`
	// OwnFDs, when set, gives the program's descriptors 3 up to the config
	// socket (pipes the host created) to UID and GID, so that a program
	// which reopens them through /dev/fd (Deno) may (not with UserNS,
	// where the host user owns them already).
	OwnFDs bool `json:"own_fds,omitempty"`
	// Tmpfs are further writable tmpfs mounts, owned by UID and GID.
	Tmpfs []TmpfsMount `json:"tmpfs,omitempty"`
	// WriteFDs are the program's descriptors of host folders Landlock lets
	// it write beneath.
	WriteFDs []int `json:"write_fds,omitempty"`
	// Egress, with a network grant, makes the init stage listen for the
	// host's egress proxy on the jail's loopback (NoNetwork is false).
	Egress *EgressJail `json:"egress,omitempty"`
}

// EgressJail is the jail's side of a network grant. It never holds a
// secret's value: the proxy (host side) has those; the jail only the CA
// certificates it must trust.
type EgressJail struct {
	// Port is the loopback port (of ProxyAddr) the init stage listens on
	// and whose listening socket it passes to the host over the config
	// socket. Landlock allows TCP connect to this port only.
	Port int `json:"port"`
	// CAFile is where CA is written (read-only) on the jail's root tmpfs.
	CAFile string `json:"ca_file,omitempty"`
	// CAOver, when set, is a file of a bind (the usual bundle path, in a
	// folder the binds cover) that CAFile is bound over, read-only.
	CAOver string `json:"ca_over,omitempty"`
	// CA is the bundle the sandbox trusts: the host's, the operator's
	// CAs and the proxy's interception CA (egress Proxy.CABundle).
	CA []byte `json:"ca,omitempty"`
}

// TmpfsMount is an empty, writable tmpfs of at most Bytes at Path.
type TmpfsMount struct {
	Path  string `json:"path"`
	Bytes int64  `json:"bytes"`
}

// MountOp is one step that builds the jail's root. Paths are as seen in the
// jail; Src is a host path.
type MountOp struct {
	// Kind is "bind" or "symlink".
	Kind string `json:"kind"`
	Src  string `json:"src,omitempty"`
	Dst  string `json:"dst"`
	// Target is the symlink's content.
	Target string `json:"target,omitempty"`
	// File is set when Src is not a directory (the mount point is a file).
	File bool `json:"file,omitempty"`
}
