//go:build linux

package seccomp

import (
	"encoding/binary"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// data encodes a struct seccomp_data as the x/net/bpf VM reads it: the VM
// loads 32-bit words big-endian while the kernel loads them in host order,
// so each word is stored big-endian at its little-endian-layout offset
// (the low half of args[i] at 16+8i, the high half at 20+8i).
func data(arch uint32, nr int32, args ...uint64) []byte {
	b := make([]byte, 64)
	binary.BigEndian.PutUint32(b[0:], uint32(nr))
	binary.BigEndian.PutUint32(b[4:], arch)
	for i, a := range args {
		binary.BigEndian.PutUint32(b[16+8*i:], uint32(a))
		binary.BigEndian.PutUint32(b[20+8*i:], uint32(a>>32))
	}
	return b
}

func TestFilterVM(t *testing.T) {
	vm, err := bpf.NewVM(Filter())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		in   []byte
		want uint32
	}{
		{"read", data(nativeArch, unix.SYS_READ, 0, 0, 0), RetAllow},
		{"getpid", data(nativeArch, unix.SYS_GETPID), RetAllow},
		{"foreign arch", data(unix.AUDIT_ARCH_I386, unix.SYS_READ), RetKillProcess},
		{"x32 read", data(nativeArch, x32Bit|unix.SYS_READ), RetEPERM},
		{"ptrace", data(nativeArch, unix.SYS_PTRACE), RetEPERM},
		{"mount", data(nativeArch, unix.SYS_MOUNT), RetEPERM},
		{"umount2", data(nativeArch, unix.SYS_UMOUNT2), RetEPERM},
		{"unshare", data(nativeArch, unix.SYS_UNSHARE, unix.CLONE_NEWUSER), RetEPERM},
		{"setns", data(nativeArch, unix.SYS_SETNS), RetEPERM},
		{"keyctl", data(nativeArch, unix.SYS_KEYCTL), RetEPERM},
		{"bpf", data(nativeArch, unix.SYS_BPF), RetEPERM},
		{"io_uring_setup", data(nativeArch, unix.SYS_IO_URING_SETUP), RetEPERM},
		{"fsopen", data(nativeArch, unix.SYS_FSOPEN), RetEPERM},
		{"clone3", data(nativeArch, unix.SYS_CLONE3), RetENOSYS},
		{"clone thread", data(nativeArch, unix.SYS_CLONE, unix.CLONE_VM|unix.CLONE_THREAD|unix.CLONE_SIGHAND), RetAllow},
		{"clone fork", data(nativeArch, unix.SYS_CLONE, uint64(unix.SIGCHLD)), RetAllow},
		{"clone newuser", data(nativeArch, unix.SYS_CLONE, unix.CLONE_NEWUSER|uint64(unix.SIGCHLD)), RetEPERM},
		{"clone newnet", data(nativeArch, unix.SYS_CLONE, unix.CLONE_NEWNET), RetEPERM},
		{"ioctl TCGETS", data(nativeArch, unix.SYS_IOCTL, 1, unix.TCGETS), RetAllow},
		{"ioctl TIOCSTI", data(nativeArch, unix.SYS_IOCTL, 0, unix.TIOCSTI), RetEPERM},
		{"ioctl TIOCSTI high bits", data(nativeArch, unix.SYS_IOCTL, 0, 0xffffffff00000000|unix.TIOCSTI), RetEPERM},
		{"ioctl TIOCLINUX", data(nativeArch, unix.SYS_IOCTL, 0, unix.TIOCLINUX), RetEPERM},
		{"personality query", data(nativeArch, unix.SYS_PERSONALITY, 0xffffffff), RetAllow},
		{"personality linux", data(nativeArch, unix.SYS_PERSONALITY, 0), RetAllow},
		{"personality no-aslr", data(nativeArch, unix.SYS_PERSONALITY, 0x0040000), RetEPERM},
		{"socket inet stream", data(nativeArch, unix.SYS_SOCKET, unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC), RetAllow},
		{"socket inet6 dgram", data(nativeArch, unix.SYS_SOCKET, unix.AF_INET6, unix.SOCK_DGRAM), RetAllow},
		{"socket unix", data(nativeArch, unix.SYS_SOCKET, unix.AF_UNIX, unix.SOCK_STREAM), RetAllow},
		{"socket inet raw", data(nativeArch, unix.SYS_SOCKET, unix.AF_INET, unix.SOCK_RAW), RetEPERM},
		{"socket inet raw nonblock", data(nativeArch, unix.SYS_SOCKET, unix.AF_INET, unix.SOCK_RAW|unix.SOCK_NONBLOCK), RetEPERM},
		{"socket packet", data(nativeArch, unix.SYS_SOCKET, unix.AF_PACKET, unix.SOCK_DGRAM), RetEPERM},
		{"socket vsock", data(nativeArch, unix.SYS_SOCKET, unix.AF_VSOCK, unix.SOCK_STREAM), RetEPERM},
		{"socket alg", data(nativeArch, unix.SYS_SOCKET, unix.AF_ALG, unix.SOCK_SEQPACKET), RetEPERM},
		{"netlink route", data(nativeArch, unix.SYS_SOCKET, unix.AF_NETLINK, unix.SOCK_DGRAM, unix.NETLINK_ROUTE), RetAllow},
		{"netlink audit", data(nativeArch, unix.SYS_SOCKET, unix.AF_NETLINK, unix.SOCK_DGRAM, unix.NETLINK_AUDIT), RetEPERM},
		{"netlink uevent", data(nativeArch, unix.SYS_SOCKET, unix.AF_NETLINK, unix.SOCK_DGRAM, unix.NETLINK_KOBJECT_UEVENT), RetEPERM},
		{"socketpair unix", data(nativeArch, unix.SYS_SOCKETPAIR, unix.AF_UNIX, unix.SOCK_STREAM), RetAllow},
		{"socketpair inet", data(nativeArch, unix.SYS_SOCKETPAIR, unix.AF_INET, unix.SOCK_STREAM), RetEPERM},
		{"memfd_create", data(nativeArch, unix.SYS_MEMFD_CREATE, 0, unix.MFD_CLOEXEC), RetEPERM},
		{"execveat", data(nativeArch, unix.SYS_EXECVEAT, 3, 0, 0, 0, unix.AT_EMPTY_PATH), RetEPERM},
		{"execve", data(nativeArch, unix.SYS_EXECVE), RetAllow},
		{"listmount", data(nativeArch, unix.SYS_LISTMOUNT), RetEPERM},
		{"statmount", data(nativeArch, unix.SYS_STATMOUNT), RetEPERM},
		{"shmget", data(nativeArch, unix.SYS_SHMGET, unix.IPC_PRIVATE, 4096, unix.IPC_CREAT|0o600), RetEPERM},
		{"shmat", data(nativeArch, unix.SYS_SHMAT), RetEPERM},
		{"msgget", data(nativeArch, unix.SYS_MSGGET, unix.IPC_PRIVATE, unix.IPC_CREAT|0o600), RetEPERM},
		{"semget", data(nativeArch, unix.SYS_SEMGET, unix.IPC_PRIVATE, 1, unix.IPC_CREAT|0o600), RetEPERM},
		{"semtimedop", data(nativeArch, unix.SYS_SEMTIMEDOP), RetEPERM},
		{"mq_open", data(nativeArch, unix.SYS_MQ_OPEN), RetEPERM},
		{"mq_getsetattr", data(nativeArch, unix.SYS_MQ_GETSETATTR), RetEPERM},
		{"seccomp filter", data(nativeArch, unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0), RetAllow},
		{"seccomp filter tsync", data(nativeArch, unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC), RetAllow},
		{"seccomp action avail", data(nativeArch, unix.SYS_SECCOMP, unix.SECCOMP_GET_ACTION_AVAIL, 0), RetAllow},
		{"seccomp listener", data(nativeArch, unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_NEW_LISTENER), RetEPERM},
		{"seccomp listener and more", data(nativeArch, unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
			unix.SECCOMP_FILTER_FLAG_NEW_LISTENER|unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH|unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV), RetEPERM},
		// The kernel reads flags as an unsigned int: high bits set alone are no listener.
		{"seccomp high bits only", data(nativeArch, unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 1<<35), RetAllow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := vm.Run(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if uint32(got) != tt.want {
				t.Errorf("filter returned %#x, want %#x", uint32(got), tt.want)
			}
		})
	}
}

func TestEveryDeniedNumber(t *testing.T) {
	vm, err := bpf.NewVM(Filter())
	if err != nil {
		t.Fatal(err)
	}
	for _, nr := range Denied() {
		got, _ := vm.Run(data(nativeArch, int32(nr)))
		if uint32(got) != RetEPERM {
			t.Errorf("syscall %d: got %#x, want EPERM", nr, uint32(got))
		}
	}
}

// TestHardeningDenied: memfd exec, mount-table reads by id, SysV IPC,
// POSIX message queues and modify_ldt are refused whatever their arguments.
func TestHardeningDenied(t *testing.T) {
	want := []uintptr{unix.SYS_MEMFD_CREATE, unix.SYS_EXECVEAT, unix.SYS_LISTMOUNT, unix.SYS_STATMOUNT,
		unix.SYS_SHMGET, unix.SYS_SHMAT, unix.SYS_SHMDT, unix.SYS_SHMCTL,
		unix.SYS_MSGGET, unix.SYS_MSGSND, unix.SYS_MSGRCV, unix.SYS_MSGCTL,
		unix.SYS_SEMGET, unix.SYS_SEMOP, unix.SYS_SEMTIMEDOP, unix.SYS_SEMCTL,
		unix.SYS_MQ_OPEN, unix.SYS_MQ_UNLINK, unix.SYS_MQ_TIMEDSEND, unix.SYS_MQ_TIMEDRECEIVE,
		unix.SYS_MQ_NOTIFY, unix.SYS_MQ_GETSETATTR}
	want = append(want, archHardening...)
	vm, err := bpf.NewVM(Filter())
	if err != nil {
		t.Fatal(err)
	}
	for _, nr := range want {
		got, _ := vm.Run(data(nativeArch, int32(nr), 1, 2, 3, 4, 5, 6))
		if uint32(got) != RetEPERM {
			t.Errorf("syscall %d: got %#x, want EPERM", nr, uint32(got))
		}
	}
}

func TestProgramAssembles(t *testing.T) {
	p, err := Program()
	if err != nil {
		t.Fatal(err)
	}
	if len(p) == 0 || len(p) > 4096 {
		t.Fatalf("program length %d", len(p))
	}
}
