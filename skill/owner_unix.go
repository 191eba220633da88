//go:build unix

package skill

import (
	"io/fs"
	"os"
	"syscall"
)

// ownerOf returns the owner and mode bits (sticky included) of fi.
func ownerOf(fi fs.FileInfo) (uid int, mode uint32, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return int(st.Uid), uint32(st.Mode) & 0o7777, true
}

// euid is the user skillbox runs as.
func euid() int { return os.Geteuid() }
