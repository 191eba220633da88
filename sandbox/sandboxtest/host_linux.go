package sandboxtest

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// hostState is what the leak checks compare: the test process's children
// and descriptors, the mount table, and the driver's cgroups.
type hostState struct {
	children []int
	fds      map[string]string
	mounts   []string
	cgroups  []string
}

func snapshotHost(t *testing.T) *hostState {
	return &hostState{children: descendants(os.Getpid()), fds: openFDs(), mounts: mountLines(), cgroups: ourCgroups()}
}

// checkHost compares the host with before, allowing a few seconds for
// asynchronous teardown.
func checkHost(t *testing.T, before *hostState) {
	var now *hostState
	deadline := time.Now().Add(5 * time.Second)
	for {
		now = snapshotHost(t)
		if len(diff(now.children, before.children)) == 0 && len(newFDs(before.fds, now.fds)) == 0 &&
			len(diffS(now.mounts, before.mounts)) == 0 && len(diffS(now.cgroups, before.cgroups)) == 0 {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, p := range diff(now.children, before.children) {
		t.Errorf("LEAK: process %d (%s) outlived its sandbox", p, procDesc(p))
	}
	for fd, link := range newFDs(before.fds, now.fds) {
		t.Errorf("LEAK: descriptor %s -> %s left open in the test process", fd, link)
	}
	for _, m := range diffS(now.mounts, before.mounts) {
		t.Errorf("LEAK: mount left in the host mount table: %s", m)
	}
	for _, c := range diffS(now.cgroups, before.cgroups) {
		t.Errorf("LEAK: cgroup left behind: %s", c)
	}
}

// descendants lists every live (or zombie) process below pid.
func descendants(pid int) []int {
	parent := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, de := range ents {
		p, err := strconv.Atoi(de.Name())
		if err != nil {
			continue
		}
		if pp := ppid(p); pp > 0 {
			parent[pp] = append(parent[pp], p)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range parent[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	slices.Sort(out)
	return out
}

func ppid(p int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/stat")
	if err != nil {
		return -1
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return -1
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

func procDesc(p int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(p) + "/cmdline")
	s := strings.Join(strings.Fields(strings.ReplaceAll(string(b), "\x00", " ")), " ")
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return s
}

// processesUnder lists processes (other than ours) whose working
// directory, root or mount table mentions root: jailed leftovers that were
// reparented away from the test process still match.
func processesUnder(root string) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, de := range ents {
		p, err := strconv.Atoi(de.Name())
		if err != nil || p == os.Getpid() {
			continue
		}
		dir := "/proc/" + de.Name()
		if l, err := os.Readlink(dir + "/cwd"); err == nil && strings.HasPrefix(l, root) {
			out = append(out, p)
			continue
		}
		if b, err := os.ReadFile(dir + "/mountinfo"); err == nil && strings.Contains(string(b), root) {
			self, _ := os.ReadFile("/proc/self/mountinfo")
			if !strings.Contains(string(self), root) || string(self) != string(b) {
				out = append(out, p)
			}
		}
	}
	return out
}

func openFDs() map[string]string {
	m := map[string]string{}
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, de := range ents {
		l, _ := os.Readlink("/proc/self/fd/" + de.Name())
		m[de.Name()] = l
	}
	return m
}

// newFDs lists descriptors open now that were not open before (the
// descriptor ReadDir itself used is excluded by comparing targets).
func newFDs(before, now map[string]string) map[string]string {
	out := map[string]string{}
	for fd, l := range now {
		if _, ok := before[fd]; !ok && !strings.HasPrefix(l, "/proc/") {
			out[fd] = l
		}
	}
	return out
}

func mountLines() []string {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 5 {
			// Drop the mount id and parent id, which are not stable keys.
			out = append(out, strings.Join(f[2:], " "))
		}
	}
	slices.Sort(out)
	return out
}

// ourCgroups lists cgroups the linux backend created for this process:
// <hierarchy>/.../skillbox/<pid>-<seq>.
func ourCgroups() []string {
	prefix := strconv.Itoa(os.Getpid()) + "-"
	var out []string
	roots, _ := filepath.Glob("/sys/fs/cgroup/*")
	roots = append(roots, "/sys/fs/cgroup")
	for _, r := range roots {
		filepath.WalkDir(r, func(p string, de os.DirEntry, err error) error {
			if err != nil || !de.IsDir() {
				return nil
			}
			if strings.Count(strings.TrimPrefix(p, r), "/") > 6 {
				return filepath.SkipDir
			}
			if filepath.Base(filepath.Dir(p)) == "skillbox" && strings.HasPrefix(de.Name(), prefix) {
				out = append(out, p)
				return filepath.SkipDir
			}
			return nil
		})
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func diff(now, before []int) []int {
	var out []int
	for _, p := range now {
		if !slices.Contains(before, p) {
			out = append(out, p)
		}
	}
	return out
}

func diffS(now, before []string) []string {
	var out []string
	for _, s := range now {
		if !slices.Contains(before, s) {
			out = append(out, s)
		}
	}
	return out
}
