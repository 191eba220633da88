//go:build unix

package trust

import (
	"os"
	"syscall"
)

// openFlags open a signature to read without waiting: a FIFO swapped in
// for it after it was looked at is opened at once, and openRegular
// refuses it (a FIFO's open waits for a writer that never comes).
const openFlags = os.O_RDONLY | syscall.O_NONBLOCK
