//go:build !unix

package userdir

import "fmt"

// private refuses: without a home folder there is no place known to be
// this user's alone.
func private(dir string) error {
	return fmt.Errorf("no private folder can be made in %s on this system", dir)
}
