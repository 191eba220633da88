package cli

import (
	"os"

	"golang.org/x/sys/unix"
)

// isatty reports whether f is a terminal: a descriptor with terminal
// attributes, which /dev/null and other character devices lack.
func isatty(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
