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
			_, _, errno := unix.RawSyscall6(p.nr, p.a[0], p.a[1], p.a[2], p.a[3], 0, 0)
			fmt.Printf("%s=%d\n", p.name, int(errno))
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type probe struct {
	name string
	nr   uintptr
	a    [4]uintptr
}

func probes() []probe {
	bad := uintptr(unsafe.Pointer(nil))
	return []probe{
		{"ptrace", unix.SYS_PTRACE, [4]uintptr{unix.PTRACE_TRACEME}},
		{"mount", unix.SYS_MOUNT, [4]uintptr{bad, bad, bad}},
		{"unshare", unix.SYS_UNSHARE, [4]uintptr{unix.CLONE_NEWUSER}},
		{"keyctl", unix.SYS_KEYCTL, [4]uintptr{0}},
		{"bpf", unix.SYS_BPF, [4]uintptr{0}},
		{"io_uring_setup", unix.SYS_IO_URING_SETUP, [4]uintptr{1, bad}},
		{"clone3", unix.SYS_CLONE3, [4]uintptr{bad, 0}},
		{"socket_packet", unix.SYS_SOCKET, [4]uintptr{unix.AF_PACKET, unix.SOCK_RAW, 0}},
		{"getpid", unix.SYS_GETPID, [4]uintptr{}},
	}
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
