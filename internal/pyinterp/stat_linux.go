package pyinterp

import "syscall"

// statSupported reports whether fileID can tell file versions apart on this
// platform; without it the persistent cache is off.
const statSupported = true

func statTimes(st *syscall.Stat_t) (mtime, ctime int64) {
	return st.Mtim.Nano(), st.Ctim.Nano()
}
