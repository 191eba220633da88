package sandboxtest

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/skillbox-dev/skillbox/sandbox"
)

// Containment of the hardening attacks: code that is on no read-only file
// system, seccomp listeners, SysV IPC, host facts in /proc and host paths
// in the mount tables, and objects the skill can see but does not own.

// filtered reports whether refusals carry the backend's seccomp errno
// (EPERM): a real kernel behind a filter, not an emulation.
func (e *attackEnv) filtered() bool {
	return !e.opts.Emulated && e.opts.Has(sandbox.FeatureKernelHardened)
}

// mustErrno asserts that every named probe (with no names, every probe but
// "info:" ones) failed with errno: refused by the filter before the kernel
// looked at the arguments, which the probes make invalid or harmless.
func mustErrno(t *testing.T, r *report, errno string, names ...string) {
	t.Helper()
	if len(names) == 0 {
		for n := range r.Probes {
			if !strings.HasPrefix(n, "info:") {
				names = append(names, n)
			}
		}
	}
	for _, n := range names {
		if p := r.Probes[n]; !p.OK && p.Errno != errno {
			t.Errorf("%s failed with %s (%s), want %s from the seccomp filter", n, p.Errno, p.Err, errno)
		}
	}
}

func ldtMemfdExec(t *testing.T, e *attackEnv) {
	r := simple(t, e, "kernel/ldt-memfd-exec", nil)
	mustFail(t, r)
	if e.filtered() {
		mustErrno(t, r, "EPERM")
	}
}

func seccompListener(t *testing.T, e *attackEnv) {
	r := simple(t, e, "kernel/seccomp-listener", nil)
	mustFail(t, r, "new_listener", "new_listener_tsync")
	if !e.filtered() {
		return
	}
	mustErrno(t, r, "EPERM", "new_listener", "new_listener_tsync")
	// The same program without the flag installs: the refusal is the
	// listener's, not a broken probe's.
	if p := r.Probes["info:plain_filter"]; !p.OK {
		t.Errorf("a filter without a listener was refused too (%s): the probe proves nothing", p.Err)
	}
}

func sysvIPC(t *testing.T, e *attackEnv) {
	r := simple(t, e, "kernel/sysv-ipc", nil)
	mustFail(t, r)
	if e.filtered() {
		mustErrno(t, r, "EPERM")
	}
}

// procHostFacts: /proc holds no host fact (and, on a real kernel, nothing
// but processes), and no mount table the skill can read names the host
// folder its bundle was bound from, the test's temporary root or the repo.
func procHostFacts(t *testing.T, e *attackEnv) {
	r := simple(t, e, "kernel/proc-host-facts", nil)
	mustFail(t, r)
	var entries []string
	json.Unmarshal(r.Probes["info:proc_entries"].Data, &entries)
	if extra := slices.DeleteFunc(entries, func(s string) bool { return s == "self" || s == "thread-self" }); !e.opts.Emulated && len(extra) > 0 {
		t.Errorf("NOT CONTAINED: /proc shows more than processes: %v", extra)
	}
	var tables map[string]string
	json.Unmarshal(r.Info["mount_tables"], &tables)
	if !e.opts.Emulated && strings.HasPrefix(tables["self/mountinfo"], "ERR") {
		t.Fatalf("own mountinfo unreadable (%s): the probe proves nothing", tables["self/mountinfo"])
	}
	for name, text := range tables {
		for _, host := range []string{e.root, e.repoDir()} {
			if strings.Contains(text, host) {
				t.Errorf("LEAK: /proc/%s names the host path %s:\n%s", name, host, text)
			}
		}
	}
}

func scratchExec(t *testing.T, e *attackEnv) {
	r := simple(t, e, "write/scratch-exec", nil)
	if e.opts.Emulated {
		// Emulated: no process can start; a mapping or dlopen happens in
		// the emulation's memory, where nothing native runs.
		mustFail(t, r, "exec_binary", "exec_script", "exec_via_loader")
		return
	}
	if p := r.Probes["info:drop"]; !p.OK {
		t.Fatalf("the skill could not write its files to the scratch (%s): the probes prove nothing", p.Err)
	}
	mustFail(t, r)
}

// chownDevices: nothing the skill sees but does not own changes, the host's
// device nodes stay as they were, and the skill's ids are nobody's on the
// host (an id the host uses, such as nobody's 65534, may own host objects).
func chownDevices(t *testing.T, e *attackEnv) {
	before := hostDevices()
	r := simple(t, e, "kernel/chown-devices", nil)
	if after := hostDevices(); after != before {
		t.Errorf("NOT CONTAINED: host device nodes changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if e.opts.Emulated {
		// Emulated: /dev and the ids are the emulation's, in memory.
		return
	}
	mustFail(t, r)
	var ids []int
	json.Unmarshal(r.Info["ids"], &ids)
	slices.Sort(ids)
	for _, id := range slices.Compact(ids) {
		if who := hostIDName(id); who != "" {
			t.Errorf("the skill runs as id %d, the host's %s", id, who)
		}
	}
}

// hostDevices describes mode and owner of the host's devices a jail binds.
func hostDevices() string {
	var b strings.Builder
	for _, d := range []string{"null", "zero", "random", "urandom"} {
		var st syscall.Stat_t
		if err := syscall.Stat("/dev/"+d, &st); err != nil {
			fmt.Fprintf(&b, "%s: %v\n", d, err)
			continue
		}
		fmt.Fprintf(&b, "%s: mode %o uid %d gid %d\n", d, st.Mode, st.Uid, st.Gid)
	}
	return b.String()
}

// hostIDName names the host user or group whose id is id ("" if none).
func hostIDName(id int) string {
	for _, f := range []string{"/etc/passwd", "/etc/group"} {
		b, _ := os.ReadFile(f)
		for _, l := range strings.Split(string(b), "\n") {
			if p := strings.Split(l, ":"); len(p) > 2 && p[2] == strconv.Itoa(id) {
				return strings.TrimPrefix(f, "/etc/") + " entry " + p[0]
			}
		}
	}
	return ""
}
