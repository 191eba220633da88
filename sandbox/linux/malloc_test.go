//go:build linux

package linux

import (
	"os"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/internal/jail/stage"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// mallocProbe reports where malloc put a 1 MiB and an 8 MiB block (the
// mapping in /proc/self/smaps of each block's last byte, and whether it may
// get transparent huge pages: a block's start may lie in a part of the
// heap too small or unaligned for one), what the jail shows of /sys, and
// the environment's view.
const mallocProbe = `        import ctypes
        def where(buf):
            addr = ctypes.addressof((ctypes.c_char * len(buf)).from_buffer(buf)) + len(buf) - 1
            name, eligible = None, None
            with open("/proc/self/smaps") as f:
                for line in f:
                    head = line.split()
                    if "-" in head[0] and len(head) >= 5:
                        lo, hi = (int(x, 16) for x in head[0].split("-"))
                        cur = lo <= addr < hi
                        if cur:
                            name = head[5] if len(head) > 5 else ""
                    elif cur and head[0] == "THPeligible:":
                        eligible = int(head[1])
            return [name, eligible]
        small, big = bytearray(1 << 20), bytearray(8 << 20)
        out = {"small": where(small), "big": where(big), "env": os.environ.get("GLIBC_TUNABLES")}
        def attempt(fn):
            try:
                return fn()
            except OSError as e:
                return "ERR " + type(e).__name__
        out["enabled"] = attempt(lambda: open("/sys/kernel/mm/transparent_hugepage/enabled").read())
        out["write"] = attempt(lambda: open("/sys/kernel/mm/transparent_hugepage/enabled", "w").write("always"))
        out["list_mm"] = attempt(lambda: os.listdir("/sys/kernel/mm"))
        out["list_thp"] = attempt(lambda: sorted(os.listdir("/sys/kernel/mm/transparent_hugepage")))
        return out`

// TestMallocTunables: a call's child allocates blocks under 32 MiB from
// malloc's heap, which asks for transparent huge pages where the host
// offers them (worker.MallocTunables); the jail shows the two /sys files
// glibc reads for that, read-only, and nothing else of /sys; the skill's
// environment does not carry the variable.
func TestMallocTunables(t *testing.T) {
	host, err := os.ReadFile(stage.THPDir + "/enabled")
	if err != nil {
		t.Skipf("no transparent huge pages on this host: %v", err)
	}
	offered := !strings.Contains(string(host), "[never]")
	for _, mode := range execModes {
		t.Run(mode, func(t *testing.T) {
			sb := openBox(t, Options{Exec: mode}, sandbox.Spec{BundleDir: bundle(t, mallocProbe)})
			res, err := call(t, sb, nil)
			if err != nil {
				t.Fatal(err)
			}
			v := value(t, res)
			t.Logf("probe: %v", v)
			if v["env"] != nil {
				t.Errorf("the skill sees GLIBC_TUNABLES=%v", v["env"])
			}
			if small := toStrings(v["small"]); len(small) != 2 || small[0] != "[heap]" {
				t.Errorf("a 1 MiB block is in %v, want malloc's [heap] (mmap_threshold)", v["small"])
			}
			if v["enabled"] != string(host) {
				t.Errorf("the jail's %s/enabled reads %q, the host's %q", stage.THPDir, v["enabled"], host)
			}
			if s, _ := v["write"].(string); !strings.HasPrefix(s, "ERR") {
				t.Errorf("the jail's %s/enabled is writable: %v", stage.THPDir, v["write"])
			}
			if s, _ := v["list_mm"].(string); !strings.HasPrefix(s, "ERR") {
				t.Errorf("the jail lists /sys/kernel/mm: %v", v["list_mm"])
			}
			if got := strings.Join(toStrings(v["list_thp"]), ","); got != "enabled,hpage_pmd_size" {
				t.Errorf("the jail's %s holds %q", stage.THPDir, got)
			}
			big, _ := v["big"].([]any)
			if offered && (len(big) != 2 || big[1] != float64(1)) {
				t.Errorf("an 8 MiB block's mapping may not get huge pages (name, THPeligible): %v; host: %s", big, host)
			}
		})
	}
}
