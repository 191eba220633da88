//go:build !linux

package skillbox

import "errors"

// newNotifier has no notifier to offer: calls resolve every time.
func newNotifier(int) (notifier, error) { return nil, errors.New("no file change notification here") }
