//go:build linux

package seccomp

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The real-kernel test re-runs the test binary with this variable set; the
// child installs the filter (irreversibly) and reports each probe's errno.
const childEnv = "SKILLBOX_SECCOMP_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		runtime.LockOSThread()
		if err := Install(); err != nil {
			fmt.Println("install:", err)
			os.Exit(3)
		}
		for _, p := range probes() {
			_, _, errno := unix.RawSyscall6(p.nr, p.a[0], p.a[1], p.a[2], p.a[3], p.a[4], p.a[5])
			fmt.Printf("%s=%d\n", p.name, int(errno))
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type probe struct {
	name string
	nr   uintptr
	a    [6]uintptr
}

// actionKill is SECCOMP_GET_ACTION_AVAIL's argument in the probes.
var actionKill = uint32(unix.SECCOMP_RET_KILL_PROCESS)

// probes are calls whose errno tells the filter's answer from the
// kernel's: arguments are invalid (bad pointers, id -1) so that a call the
// filter let through fails otherwise (EFAULT, EINVAL, EBADF) and changes
// nothing on the host (the child shares the host's IPC namespace).
func probes() []probe {
	bad := uintptr(unsafe.Pointer(nil))
	none := ^uintptr(0) // -1: no such id or descriptor
	p := []probe{
		{"ptrace", unix.SYS_PTRACE, [6]uintptr{unix.PTRACE_TRACEME}},
		{"mount", unix.SYS_MOUNT, [6]uintptr{bad, bad, bad}},
		{"unshare", unix.SYS_UNSHARE, [6]uintptr{unix.CLONE_NEWUSER}},
		{"keyctl", unix.SYS_KEYCTL, [6]uintptr{0}},
		{"bpf", unix.SYS_BPF, [6]uintptr{0}},
		{"io_uring_setup", unix.SYS_IO_URING_SETUP, [6]uintptr{1, bad}},
		{"clone3", unix.SYS_CLONE3, [6]uintptr{bad, 0}},
		{"socket_packet", unix.SYS_SOCKET, [6]uintptr{unix.AF_PACKET, unix.SOCK_RAW, 0}},
		{"getpid", unix.SYS_GETPID, [6]uintptr{}},
		{"memfd_create", unix.SYS_MEMFD_CREATE, [6]uintptr{bad, 0}},
		{"execveat", unix.SYS_EXECVEAT, [6]uintptr{none, bad, bad, bad, unix.AT_EMPTY_PATH}},
		{"listmount", unix.SYS_LISTMOUNT, [6]uintptr{bad, bad, 0, 0}},
		{"statmount", unix.SYS_STATMOUNT, [6]uintptr{bad, bad, 0, 0}},
		{"shmctl", unix.SYS_SHMCTL, [6]uintptr{none, unix.IPC_RMID, 0}},
		{"msgctl", unix.SYS_MSGCTL, [6]uintptr{none, unix.IPC_RMID, 0}},
		{"semctl", unix.SYS_SEMCTL, [6]uintptr{none, 0, unix.IPC_RMID}},
		{"mq_open", unix.SYS_MQ_OPEN, [6]uintptr{bad, 0, 0, 0}},
		{"seccomp_listener", unix.SYS_SECCOMP, [6]uintptr{unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_NEW_LISTENER, bad}},
		{"seccomp_action_avail", unix.SYS_SECCOMP, [6]uintptr{unix.SECCOMP_GET_ACTION_AVAIL, 0, uintptr(unsafe.Pointer(&actionKill))}},
	}
	for _, nr := range archOnly {
		p = append(p, probe{fmt.Sprintf("arch_%d", nr), nr, [6]uintptr{}})
	}
	return p
}

func TestKernel(t *testing.T) {
	if err := Available(); err != nil {
		t.Skip(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	want := map[string]unix.Errno{
		"ptrace": unix.EPERM, "mount": unix.EPERM, "unshare": unix.EPERM,
		"keyctl": unix.EPERM, "bpf": unix.EPERM, "io_uring_setup": unix.EPERM,
		"clone3": unix.ENOSYS, "socket_packet": unix.EPERM, "getpid": 0,
		"memfd_create": unix.EPERM, "execveat": unix.EPERM, "listmount": unix.EPERM,
		"statmount": unix.EPERM, "shmctl": unix.EPERM, "msgctl": unix.EPERM,
		"semctl": unix.EPERM, "mq_open": unix.EPERM, "seccomp_listener": unix.EPERM,
		// Other uses of seccomp(2) stay allowed.
		"seccomp_action_avail": 0,
	}
	for _, nr := range archOnly {
		want[fmt.Sprintf("arch_%d", nr)] = unix.EPERM
	}
	got := map[string]unix.Errno{}
	for _, line := range strings.Fields(string(out)) {
		var name string
		var e int
		k, v, _ := strings.Cut(line, "=")
		name = k
		fmt.Sscan(v, &e)
		got[name] = unix.Errno(e)
	}
	for name, w := range want {
		if g, ok := got[name]; !ok || g != w {
			t.Errorf("%s: errno %v (reported %v), want %v\n%s", name, g, ok, w, out)
		}
	}
}
