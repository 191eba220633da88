// Package proctest reads what tests need of /proc: whether a process they
// started is still the one they started.
package proctest

import (
	"os"
	"strconv"
	"strings"
)

// StartTime is pid's start time (field 22 of /proc/PID/stat, clock ticks
// since boot), or "" when pid is gone or a zombie, which has done all it
// will. A pid taken by another process later has another start time, so a
// test compares it with the one it saw first.
func StartTime(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 || f[0] == "Z" {
		return ""
	}
	return f[19]
}
