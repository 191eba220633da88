//go:build !linux && !darwin

package pyinterp

import (
	"errors"
	"os"
)

// statSupported is false: without inode and ctime a file's version cannot
// be told reliably, so the persistent cache is off.
const statSupported = false

func fileID(string, bool, int64) fileStat { return fileStat{id: "unsupported"} }
func ownedPrivately(*os.File) bool        { return false }
func physicalWd() (string, error)         { return "", errors.New("unsupported") }
