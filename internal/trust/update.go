package trust

import "github.com/skillbox-dev/skillbox/internal/filelock"

// LockSuffix names the lock file next to a store: "<store>.lock".
const LockSuffix = ".lock"

// Update is the one way to change the store at path: it takes an exclusive
// advisory lock on the sibling file path+LockSuffix (created 0600, with its
// folder 0700, if missing), reads the store afresh, runs fn on it and, if
// fn returns nil, saves it; then it unlocks. Two processes (or goroutines)
// updating the same store so run one after the other, and neither loses
// the other's change. fn's error is returned as it is, and nothing is
// saved. A store that cannot be read is refused as Open refuses it.
//
// The lock is on a sibling because Save replaces the store by renaming a
// new file over it: a lock on the store itself would be lost with the file
// it was taken on. Readers (Open, then Trusted or Lookup) take no lock:
// they see the store before or after an update, never a mix.
//
// Everything fn does happens while other writers wait: it must not ask
// the operator anything (ask first, then Update), and it must not call
// Update on the same store, which would wait for itself.
func Update(path string, fn func(*Store) error) error {
	if path == "" {
		return noPath()
	}
	unlock, err := filelock.Lock(path+LockSuffix, "trust store")
	if err != nil {
		return err
	}
	defer unlock()
	s, err := Open(path)
	if err != nil {
		return err
	}
	if err := fn(s); err != nil {
		return err
	}
	return s.Save()
}
