package skillbox

import (
	"fmt"
	"slices"
	"sync"

	"github.com/skillbox-dev/skillbox/internal/lockfile"
	"github.com/skillbox-dev/skillbox/internal/trust"
	"github.com/skillbox-dev/skillbox/policy"
	"github.com/skillbox-dev/skillbox/skill"
)

// LockName is the lockfile's conventional name (skills.lock), looked for in
// the working directory.
const LockName = lockfile.Name

// Lock is a lockfile (skills.lock, written by `skillbox lock`) that locked
// calls must match: CallOptions.Lock refuses a call whose skill, digest,
// version, tier or grants drift from it, and makes the limits it pinned the
// call's defaults. It is safe for concurrent use.
type Lock struct {
	mu sync.Mutex
	l  *lockfile.Lock
}

// LoadLock reads the lockfile at path. A missing file is errdefs.NotFound;
// a malformed one is errdefs.Invalid naming the line or entry.
func LoadLock(path string) (*Lock, error) {
	l, err := lockfile.Load(path)
	if err != nil {
		return nil, err
	}
	return &Lock{l: l}, nil
}

// Path is the file the lock was read from.
func (k *Lock) Path() string { return k.l.Path() }

// IDs lists the locked skills' ids, sorted.
func (k *Lock) IDs() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	ids := make([]string, 0, len(k.l.Skills))
	for id := range k.l.Skills {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Has reports whether the skill id is locked.
func (k *Lock) Has(id string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	_, ok := k.l.Skills[id]
	return ok
}

// entry returns the lock's pin of s, called by ref: the lock's hints then
// name the skill as the operator did (a path), so that the commands they
// print work. A pin of a signed bundle by its digest from before bundle
// digests left the signature out is moved to the current digest when the
// files are the same, with a warning saying how to record it.
func (k *Lock) entry(s *skill.Skill, ref string) (e lockfile.Entry, ok bool, warning string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.l.Refer(s.ID, ref)
	if e, ok = k.l.Skills[s.ID]; !ok || e.Digest == s.Digest {
		return e, ok, ""
	}
	if old, signed, err := trust.LegacyDigest(s.Dir); err == nil && signed && k.l.Repin(s.ID, old, s.Digest) {
		e = k.l.Skills[s.ID]
		warning = fmt.Sprintf("%s pins %s at %s, its digest from before signatures (%s) were left out of bundle digests; the files are the same, so it runs: '%s' records its digest %s",
			k.l.Path(), s.ID, old, trust.SignatureFile, k.l.RelockCommand(s.ID, e.Grants), s.Digest)
	}
	return e, true, warning
}

// check refuses a call of s with decision d that the lock does not cover.
// A container skill's locked image becomes the decision's pinned image
// (Spec.Container.Digest), so the backend runs that image or refuses.
func (k *Lock) check(s *skill.Skill, d *policy.Decision) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.l.Check(s.ID, s.Bundle.Manifest.Version, s.Digest, string(s.Tier), lockfile.GrantsOf(d)); err != nil {
		return err
	}
	if c := d.Spec.Container; c != nil {
		digest, err := k.l.CheckImage(s.ID, c.Digest)
		if err != nil {
			return err
		}
		if digest != "" {
			pinned := *c
			pinned.Digest = digest
			d.Spec.Container = &pinned
		}
	}
	return nil
}

// checkEnvironment refuses a call of s whose environment resolved to a set
// (skillenv's "name==version sha256=HEX") other than the one locked.
func (k *Lock) checkEnvironment(s *skill.Skill, resolved []string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.l.CheckEnvironment(s.ID, resolved)
}

// environment returns the resolved set the lock records for the skill id
// (nil when it records none).
func (k *Lock) environment(id string) []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.l.Skills[id].Environment)
}

// relockCommand is the command that locks the skill id again in this
// lockfile with its locked grants (recording its environment anew).
func (k *Lock) relockCommand(id string) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.l.RelockCommand(id, k.l.Skills[id].Grants)
}
