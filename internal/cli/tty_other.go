//go:build !linux

package cli

import "os"

// isatty reports whether f looks like a terminal. Outside Linux it is a
// character device check, which also takes /dev/null; confirm still treats
// an input that ends without an answer as an error, never as "no".
func isatty(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
