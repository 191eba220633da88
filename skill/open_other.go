//go:build !unix

package skill

import "os"

// openFlags open a file to read (see open_unix.go).
const openFlags = os.O_RDONLY
