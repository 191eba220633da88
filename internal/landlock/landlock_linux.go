// Package landlock applies a Landlock ruleset to the calling thread with
// raw syscalls.
//
// go-landlock (in go.mod) cannot be built here: its syscall package needs
// kernel.org/.../libcap/psx, which is not in go.sum, to restrict all
// threads. skillbox only restricts the one locked thread that then execs
// the jailed program, so the three syscalls are all it needs.
package landlock

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Access rights by the ABI version that introduced them.
const (
	fsV1 = unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_WRITE_FILE |
		unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_READ_DIR |
		unix.LANDLOCK_ACCESS_FS_REMOVE_DIR | unix.LANDLOCK_ACCESS_FS_REMOVE_FILE |
		unix.LANDLOCK_ACCESS_FS_MAKE_CHAR | unix.LANDLOCK_ACCESS_FS_MAKE_DIR |
		unix.LANDLOCK_ACCESS_FS_MAKE_REG | unix.LANDLOCK_ACCESS_FS_MAKE_SOCK |
		unix.LANDLOCK_ACCESS_FS_MAKE_FIFO | unix.LANDLOCK_ACCESS_FS_MAKE_BLOCK |
		unix.LANDLOCK_ACCESS_FS_MAKE_SYM
	fileRights = unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_WRITE_FILE |
		unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_TRUNCATE |
		unix.LANDLOCK_ACCESS_FS_IOCTL_DEV
	// Read rights granted on read-only paths.
	readDir  = unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_READ_DIR
	readFile = unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_READ_FILE
)

// ABI returns the kernel's Landlock ABI version, or 0 with the reason.
func ABI() (int, error) {
	v, _, e := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if e != 0 {
		return 0, fmt.Errorf("landlock unavailable: %w", e)
	}
	return int(v), nil
}

// Handled is what a ruleset restricts for an ABI version.
type Handled struct {
	FS, Net, Scoped uint64
}

// HandledFor returns every right ABI abi can restrict (known to this
// package: up to ABI 7; newer kernels are restricted as ABI 7).
func HandledFor(abi int) Handled {
	var h Handled
	if abi >= 1 {
		h.FS = fsV1
	}
	if abi >= 2 {
		h.FS |= unix.LANDLOCK_ACCESS_FS_REFER
	}
	if abi >= 3 {
		h.FS |= unix.LANDLOCK_ACCESS_FS_TRUNCATE
	}
	if abi >= 4 {
		h.Net = unix.LANDLOCK_ACCESS_NET_BIND_TCP | unix.LANDLOCK_ACCESS_NET_CONNECT_TCP
	}
	if abi >= 5 {
		h.FS |= unix.LANDLOCK_ACCESS_FS_IOCTL_DEV
	}
	if abi >= 6 {
		h.Scoped = unix.LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | unix.LANDLOCK_SCOPE_SIGNAL
	}
	return h
}

// Rules lists path grants.
type Rules struct {
	// RODirs and ROFiles may be read (and executed).
	RODirs, ROFiles []string
	// RWDirs get every handled filesystem right.
	RWDirs []string
	// RWFiles may be read and written (device nodes such as /dev/null).
	RWFiles []string
}

// Restrict enforces h (no network rule is ever added, so a handled TCP
// bind/connect right is denied everywhere) with r's grants on the calling
// thread and what it execs. The caller holds runtime.LockOSThread and has
// set no_new_privs or holds CAP_SYS_ADMIN.
func Restrict(h Handled, r Rules) error {
	attr := unix.LandlockRulesetAttr{Handled_access_fs: h.FS, Handled_access_net: h.Net, Scoped: h.Scoped}
	// Only the first three fields: older kernels reject a larger struct
	// only when its extra bytes are non-zero, newer ones accept the prefix.
	fd, _, e := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, uintptr(unsafe.Pointer(&attr)), 24, 0)
	if e != 0 {
		return fmt.Errorf("landlock_create_ruleset: %w", e)
	}
	defer unix.Close(int(fd))
	add := func(paths []string, access uint64) error {
		for _, p := range paths {
			if err := addPath(int(fd), p, access); err != nil {
				return err
			}
		}
		return nil
	}
	if err := add(r.RODirs, readDir&h.FS); err != nil {
		return err
	}
	if err := add(r.ROFiles, readFile&h.FS); err != nil {
		return err
	}
	if err := add(r.RWDirs, h.FS); err != nil {
		return err
	}
	rw := uint64(unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_WRITE_FILE | unix.LANDLOCK_ACCESS_FS_TRUNCATE)
	if err := add(r.RWFiles, rw&h.FS); err != nil {
		return err
	}
	if _, _, e := unix.RawSyscall(unix.SYS_LANDLOCK_RESTRICT_SELF, fd, 0, 0); e != 0 {
		return fmt.Errorf("landlock_restrict_self: %w", e)
	}
	return nil
}

func addPath(ruleset int, path string, access uint64) error {
	pfd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("landlock rule for %s: %w", path, err)
	}
	defer unix.Close(pfd)
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		access &= fileRights
	}
	attr := unix.LandlockPathBeneathAttr{Allowed_access: access, Parent_fd: int32(pfd)}
	_, _, e := unix.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, uintptr(ruleset), unix.LANDLOCK_RULE_PATH_BENEATH,
		uintptr(unsafe.Pointer(&attr)), 0, 0, 0)
	if e != 0 {
		return fmt.Errorf("landlock rule for %s: %w", path, e)
	}
	return nil
}
