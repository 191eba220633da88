package trust

import (
	"io/fs"
	"syscall"
)

// statIdentity returns fi's device, inode and change time (nanoseconds),
// which no write, rename over or chmod leaves as they were.
func statIdentity(fi fs.FileInfo) (dev, ino uint64, ctime int64, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, 0, false
	}
	return st.Dev, st.Ino, st.Ctim.Nano(), true
}
