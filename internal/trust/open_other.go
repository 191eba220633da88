//go:build !unix

package trust

import "os"

// openFlags open a signature to read (see open_unix.go).
const openFlags = os.O_RDONLY
