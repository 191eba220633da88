//go:build linux

package linux

import (
	"reflect"
	"testing"

	"github.com/skillbox-dev/skillbox/sandbox"
)

// inheritSkill's "plant" call changes, in its zygote (pid 1 of the jail,
// and its parent), what a fork inherits and any process of the same uid
// may set: resource limits, the nice value (also through its process
// group), the scheduling policy, the CPU affinity and the I/O priority.
// Every call reports its own.
const inheritSkill = `        import resource, ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        ioprio_get, ioprio_set = {"x86_64": (252, 251), "aarch64": (31, 30)}[os.uname().machine]
        def ioprio_idle():
            if libc.syscall(ctypes.c_long(ioprio_set), 1, 1, 3 << 13) != 0:
                raise OSError(ctypes.get_errno(), "ioprio_set")
        done = {}
        if params.get("op") == "plant":
            for name, fn in (
                    ("nofile", lambda: resource.prlimit(1, resource.RLIMIT_NOFILE, (777, 1000))),
                    ("as", lambda: resource.prlimit(1, resource.RLIMIT_AS, (1 << 40, 1 << 41))),
                    ("nice_pgrp", lambda: os.setpriority(os.PRIO_PGRP, 0, 3)),
                    ("nice", lambda: os.setpriority(os.PRIO_PROCESS, 1, 9)),
                    ("affinity", lambda: os.sched_setaffinity(1, sorted(os.sched_getaffinity(0))[:1])),
                    ("policy", lambda: os.sched_setscheduler(1, os.SCHED_BATCH, os.sched_param(0))),
                    ("ioprio", ioprio_idle)):
                if name != params["what"]:
                    continue
                try:
                    fn()
                    done[name] = "ok"
                except OSError as e:
                    done[name] = str(e)
        return {"done": done, "own": {
            "nofile": list(resource.getrlimit(resource.RLIMIT_NOFILE)),
            "as": list(resource.getrlimit(resource.RLIMIT_AS)),
            "nice": os.getpriority(os.PRIO_PROCESS, 0),
            "policy": os.sched_getscheduler(0),
            "affinity": sorted(os.sched_getaffinity(0)),
            "ioprio": libc.syscall(ctypes.c_long(ioprio_get), 1, 0)}}`

// TestZygoteAttrsNotInherited: a call's process may change its zygote's
// resource limits, nice value, scheduling policy, CPU affinity and I/O
// priority (it has the zygote's uid, which is all the kernel asks); the
// next call's child, a fork of that zygote, must not start with them.
func TestZygoteAttrsNotInherited(t *testing.T) {
	sb := openBox(t, Options{Exec: ExecZygote, PoolSize: 1, MinIdle: 1}, sandbox.Spec{BundleDir: bundle(t, inheritSkill)})
	res, err := call(t, sb, map[string]any{"op": "look"})
	if err != nil {
		t.Fatal(err)
	}
	want := value(t, res)["own"]
	for _, what := range []string{"nofile", "as", "nice_pgrp", "nice", "affinity", "policy", "ioprio"} {
		res, err = call(t, sb, map[string]any{"op": "plant", "what": what})
		if err != nil {
			t.Fatal(err)
		}
		if done := value(t, res)["done"].(map[string]any); done[what] != "ok" {
			t.Errorf("plant %s: %v", what, done)
		}
		for i := range 2 {
			res, err = call(t, sb, map[string]any{"op": "look"})
			if err != nil {
				t.Fatalf("call %d after the plant of %s: %v", i, what, err)
			}
			if got := value(t, res)["own"]; !reflect.DeepEqual(got, want) {
				t.Errorf("call %d after the plant of %s starts with %v, the first call with %v", i, what, got, want)
			}
		}
	}
}
