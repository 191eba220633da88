//go:build linux || darwin

package pyinterp

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// fileID identifies the current version of path (following a final symlink
// when follow is set): device, inode, type and permissions, owner, size,
// mtime and ctime. Any write, chmod, chown, rename over or re-creation
// changes it; the ctime cannot be set back by the file's owner. A missing
// path is "absent".
func fileID(path string, follow bool, res int64) fileStat {
	var st syscall.Stat_t
	var err error
	if follow {
		err = syscall.Stat(path, &st)
	} else {
		err = syscall.Lstat(path, &st)
	}
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ENOTDIR) {
			return fileStat{id: "absent"}
		}
		return fileStat{id: "error " + err.Error()}
	}
	mtime, ctime := statTimes(&st)
	mtime -= mtime % res
	ctime -= ctime % res
	format := uint32(st.Mode) & syscall.S_IFMT
	return fileStat{
		id:      fmt.Sprintf("%d %d %o %d %d %d %d", st.Dev, st.Ino, st.Mode, st.Uid, st.Size, mtime, ctime),
		dir:     format == syscall.S_IFDIR,
		regular: format == syscall.S_IFREG,
		ctime:   ctime,
	}
}

// ownedPrivately reports whether the open file f belongs to the effective
// user and only it can write it: a cache anyone else can write is not read.
func ownedPrivately(f *os.File) bool {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return int(st.Uid) == os.Geteuid() && st.Mode&0o022 == 0
}

// physicalWd is the working directory with symlinks resolved, as a
// process started without $PWD (pyenv's bash) sees it.
func physicalWd() (string, error) { return unix.Getwd() }
