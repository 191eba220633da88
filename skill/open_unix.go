//go:build unix

package skill

import (
	"os"
	"syscall"
)

// openFlags open a file to read without waiting: a FIFO (or a device)
// swapped in for a file after it was looked at is opened at once, and the
// caller, which checks what it opened, refuses it. Without O_NONBLOCK the
// open of a FIFO waits for a writer that never comes.
const openFlags = os.O_RDONLY | syscall.O_NONBLOCK
