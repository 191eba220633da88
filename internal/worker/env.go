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
