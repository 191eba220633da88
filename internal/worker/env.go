package worker

import (
	"maps"
	"slices"
	"strings"
)

// Environ is a worker's whole environment: fixed, non-secret values (PATH,
// HOME and TMPDIR set to home, LANG, PYTHONDONTWRITEBYTECODE) plus exactly
// the granted variables, which cannot override the fixed ones. The order is
// stable.
func Environ(home string, granted map[string]string) []string {
	fixed := map[string]string{
		"PATH":                    "/usr/local/bin:/usr/bin:/bin",
		"HOME":                    home,
		"TMPDIR":                  home,
		"LANG":                    "C.UTF-8",
		"PYTHONDONTWRITEBYTECODE": "1",
	}
	env := make([]string, 0, len(fixed)+len(granted))
	for _, k := range slices.Sorted(maps.Keys(granted)) {
		if _, ok := fixed[k]; !ok && k != "" && !strings.ContainsAny(k, "=\x00") {
			env = append(env, k+"="+granted[k])
		}
	}
	for _, k := range slices.Sorted(maps.Keys(fixed)) {
		env = append(env, k+"="+fixed[k])
	}
	return env
}

// MallocTunables is the GLIBC_TUNABLES value a worker's interpreter starts
// with where the harness forks a fresh process per call (WithMallocTunables):
// malloc serves every block under 32 MiB (the most its own sliding
// threshold would reach) from its heap rather than a mapping of its own,
// and asks for transparent huge pages for the heap and for larger blocks
// (madvise; only where the kernel offers them, as its settings under
// /sys/kernel/mm/transparent_hugepage say). A call's child is a new
// process: each 4 KiB page its megabytes of parameters, text and result
// touch is one page fault (tens of microseconds on a virtual machine with
// shadow paging), and a huge page is one fault per 2 MiB. The harness
// removes the variable from the environment the skill sees.
const MallocTunables = "glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=33554432"

// WithMallocTunables returns env with GLIBC_TUNABLES=MallocTunables added,
// unless env already sets GLIBC_TUNABLES (a granted value is the operator's
// and is kept). Interpreters that are not glibc's ignore it.
func WithMallocTunables(env []string) []string {
	for _, kv := range env {
		if strings.HasPrefix(kv, "GLIBC_TUNABLES=") {
			return env
		}
	}
	return append(env, "GLIBC_TUNABLES="+MallocTunables)
}
