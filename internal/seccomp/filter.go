//go:build linux

package seccomp

import (
	"fmt"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Return values of the filter (SECCOMP_RET_*), exported for tests.
const (
	RetAllow       = unix.SECCOMP_RET_ALLOW
	RetKillProcess = unix.SECCOMP_RET_KILL_PROCESS
	RetEPERM       = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	RetENOSYS      = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
)

// Offsets into struct seccomp_data.
const (
	offNr   = 0
	offArch = 4
	offArgs = 16 // args[i] is 8 bytes at offArgs+8*i; the low half comes first on little-endian hosts
)

// nsFlags are the clone flags that create namespaces; a jailed process may
// not create any (nested user namespaces are the classic escalation path).
const nsFlags = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWUSER |
	unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP | unix.CLONE_NEWTIME

// denied are refused outright with EPERM.
var denied = []uintptr{
	// Debugging other processes and reading their memory.
	unix.SYS_PTRACE, unix.SYS_PROCESS_VM_READV, unix.SYS_PROCESS_VM_WRITEV,
	unix.SYS_PIDFD_GETFD, unix.SYS_KCMP,
	// Mounts and namespaces, including the new mount API.
	unix.SYS_MOUNT, unix.SYS_UMOUNT2, unix.SYS_PIVOT_ROOT, unix.SYS_CHROOT,
	unix.SYS_UNSHARE, unix.SYS_SETNS,
	unix.SYS_OPEN_TREE, unix.SYS_MOVE_MOUNT, unix.SYS_FSOPEN, unix.SYS_FSCONFIG,
	unix.SYS_FSMOUNT, unix.SYS_FSPICK, unix.SYS_MOUNT_SETATTR, unix.SYS_OPEN_TREE_ATTR,
	// Reading the mount table by id: statmount shows every mount's source
	// and root, the host paths that /proc's mountinfo no longer does.
	unix.SYS_LISTMOUNT, unix.SYS_STATMOUNT,
	// Keyrings.
	unix.SYS_KEYCTL, unix.SYS_ADD_KEY, unix.SYS_REQUEST_KEY,
	// Large kernel attack surfaces.
	unix.SYS_BPF, unix.SYS_PERF_EVENT_OPEN, unix.SYS_USERFAULTFD,
	unix.SYS_IO_URING_SETUP, unix.SYS_IO_URING_ENTER, unix.SYS_IO_URING_REGISTER,
	unix.SYS_OPEN_BY_HANDLE_AT, unix.SYS_NAME_TO_HANDLE_AT,
	// Modules, kexec, reboot and other machine-wide switches.
	unix.SYS_INIT_MODULE, unix.SYS_FINIT_MODULE, unix.SYS_DELETE_MODULE,
	unix.SYS_KEXEC_LOAD, unix.SYS_KEXEC_FILE_LOAD, unix.SYS_REBOOT,
	unix.SYS_SWAPON, unix.SYS_SWAPOFF, unix.SYS_ACCT, unix.SYS_QUOTACTL,
	unix.SYS_SYSLOG, unix.SYS_VHANGUP, unix.SYS_LOOKUP_DCOOKIE,
	unix.SYS_SETTIMEOFDAY, unix.SYS_CLOCK_SETTIME, unix.SYS_CLOCK_ADJTIME, unix.SYS_ADJTIMEX,
	// NUMA page moves across processes.
	unix.SYS_MOVE_PAGES, unix.SYS_MIGRATE_PAGES,
	// Running code that is on no file system: an anonymous memory file
	// and exec by descriptor are how a dropped binary runs where every
	// writable mount is noexec.
	unix.SYS_MEMFD_CREATE, unix.SYS_EXECVEAT,
	// SysV IPC and POSIX message queues: objects of the IPC namespace
	// that outlive the process that made them, so one call could leave
	// them for the next call forked from the same zygote. Python's
	// multiprocessing uses neither (its semaphores are POSIX ones, in
	// /dev/shm, which the jail does not have).
	unix.SYS_SHMGET, unix.SYS_SHMAT, unix.SYS_SHMDT, unix.SYS_SHMCTL,
	unix.SYS_MSGGET, unix.SYS_MSGSND, unix.SYS_MSGRCV, unix.SYS_MSGCTL,
	unix.SYS_SEMGET, unix.SYS_SEMOP, unix.SYS_SEMTIMEDOP, unix.SYS_SEMCTL,
	unix.SYS_MQ_OPEN, unix.SYS_MQ_UNLINK, unix.SYS_MQ_TIMEDSEND, unix.SYS_MQ_TIMEDRECEIVE,
	unix.SYS_MQ_NOTIFY, unix.SYS_MQ_GETSETATTR,
}

// deniedSeccompFlags are seccomp(2) flags refused: a user-notification
// listener lets a process answer the system calls of its children in
// their place, a kernel interface with a history of bugs that no skill
// needs. Installing further filters (which only restrict) stays allowed.
const deniedSeccompFlags = unix.SECCOMP_FILTER_FLAG_NEW_LISTENER

// deniedIoctls are terminal ioctls that inject input or reach the console.
var deniedIoctls = []uint32{unix.TIOCSTI, unix.TIOCLINUX}

// allowedPersonalities: PER_LINUX, and 0xffffffff which only queries.
var allowedPersonalities = []uint32{0, 0xffffffff}

// Socket domains a jailed process may create. Everything else (AF_PACKET,
// AF_VSOCK, which is not namespaced and reaches a VM's host, AF_ALG, ...)
// is refused. Netlink is allowed only as NETLINK_ROUTE, which libc's
// getaddrinfo and if_nameindex use, and which sees only the empty netns.
var allowedDomains = []uint32{unix.AF_UNIX, unix.AF_INET, unix.AF_INET6}

// Denied lists the syscall numbers the filter refuses outright (without
// looking at arguments), for tests and documentation.
func Denied() []uintptr {
	out := append([]uintptr(nil), denied...)
	return append(out, archOnly...)
}

// Filter returns the filter program.
func Filter() []bpf.Instruction {
	p := []bpf.Instruction{
		bpf.LoadAbsolute{Off: offArch, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: nativeArch, SkipTrue: 1},
		bpf.RetConstant{Val: RetKillProcess},
		bpf.LoadAbsolute{Off: offNr, Size: 4},
	}
	if x32Bit != 0 {
		p = append(p,
			bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: x32Bit, SkipFalse: 1},
			bpf.RetConstant{Val: RetEPERM})
	}
	for _, nr := range Denied() {
		p = append(p, denyNr(uint32(nr), RetEPERM)...)
	}
	// clone3 passes its flags in memory the filter cannot read: make libc
	// fall back to clone.
	p = append(p, denyNr(unix.SYS_CLONE3, RetENOSYS)...)
	p = append(p, block(unix.SYS_CLONE,
		loadArg(0),
		bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: nsFlags, SkipFalse: 1},
		bpf.RetConstant{Val: RetEPERM},
		bpf.RetConstant{Val: RetAllow},
	)...)
	p = append(p, block(unix.SYS_IOCTL, append([]bpf.Instruction{loadArg(1)},
		denyValues(deniedIoctls)...)...)...)
	// seccomp's flags are an unsigned int: the low half is all the kernel reads.
	p = append(p, block(unix.SYS_SECCOMP,
		loadArg(1),
		bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: deniedSeccompFlags, SkipFalse: 1},
		bpf.RetConstant{Val: RetEPERM},
		bpf.RetConstant{Val: RetAllow},
	)...)
	p = append(p, block(unix.SYS_PERSONALITY, append([]bpf.Instruction{loadArg(0)},
		allowValues(allowedPersonalities)...)...)...)
	p = append(p, block(unix.SYS_SOCKET, socketCheck()...)...)
	p = append(p, block(unix.SYS_SOCKETPAIR, append([]bpf.Instruction{loadArg(0)},
		allowValues([]uint32{unix.AF_UNIX})...)...)...)
	return append(p, bpf.RetConstant{Val: RetAllow})
}

// Program assembles Filter for the kernel.
func Program() ([]unix.SockFilter, error) {
	raw, err := bpf.Assemble(Filter())
	if err != nil {
		return nil, fmt.Errorf("seccomp: assemble: %w", err)
	}
	out := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		out[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return out, nil
}

func loadArg(i uint32) bpf.Instruction {
	return bpf.LoadAbsolute{Off: offArgs + 8*i, Size: 4}
}

func denyNr(nr, ret uint32) []bpf.Instruction {
	return []bpf.Instruction{
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: nr, SkipFalse: 1},
		bpf.RetConstant{Val: ret},
	}
}

// block runs body (which must end in a return) when the syscall number is
// nr, and skips it otherwise. body may clobber the accumulator.
func block(nr uint32, body ...bpf.Instruction) []bpf.Instruction {
	return append([]bpf.Instruction{
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: nr, SkipFalse: uint8(len(body))},
	}, body...)
}

// denyValues returns EPERM if the accumulator equals one of vals, else allows.
func denyValues(vals []uint32) []bpf.Instruction {
	var p []bpf.Instruction
	for _, v := range vals {
		p = append(p, denyNr(v, RetEPERM)...)
	}
	return append(p, bpf.RetConstant{Val: RetAllow})
}

// allowValues allows if the accumulator equals one of vals, else EPERM.
func allowValues(vals []uint32) []bpf.Instruction {
	var p []bpf.Instruction
	for _, v := range vals {
		p = append(p, bpf.JumpIf{Cond: bpf.JumpEqual, Val: v, SkipFalse: 1}, bpf.RetConstant{Val: RetAllow})
	}
	return append(p, bpf.RetConstant{Val: RetEPERM})
}

// socketCheck refuses raw and packet socket types, then allows only the
// domains in allowedDomains and NETLINK_ROUTE.
func socketCheck() []bpf.Instruction {
	p := []bpf.Instruction{
		loadArg(1),
		bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0xf}, // strip SOCK_NONBLOCK|SOCK_CLOEXEC
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.SOCK_RAW, SkipTrue: 1},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.SOCK_PACKET, SkipFalse: 1},
		bpf.RetConstant{Val: RetEPERM},
		loadArg(0),
	}
	for _, d := range allowedDomains {
		p = append(p, bpf.JumpIf{Cond: bpf.JumpEqual, Val: d, SkipFalse: 1}, bpf.RetConstant{Val: RetAllow})
	}
	return append(p,
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.AF_NETLINK, SkipFalse: 3},
		loadArg(2),
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.NETLINK_ROUTE, SkipFalse: 1},
		bpf.RetConstant{Val: RetAllow},
		bpf.RetConstant{Val: RetEPERM},
	)
}
