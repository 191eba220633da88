package image

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/atomicfile"
	"github.com/skillbox-dev/skillbox/internal/filelock"
)

// FirstPin is the image a registry tag resolved to the first time a
// version of a skill that nothing else pins (a bundled or project skill
// not locked, an external one run with --trust-remote-code or trusted by a
// signature) opened a sandbox: that version then runs that image only, so
// a tag moved afterwards is noticed instead of silently running other
// code. A version is a bundle digest: an edited bundle pins afresh.
type FirstPin struct {
	// Skill is the skill's id, for messages (the key is Bundle and Ref).
	Skill string `json:"skill"`
	// Bundle is the bundle digest the pin is for.
	Bundle string `json:"bundle"`
	// Ref is the tag, Digest the image it resolved to.
	Ref    Ref    `json:"ref"`
	Digest Digest `json:"digest"`
	// Pinned is when the digest was recorded: on first resolve, or by
	// Repin (`skillbox image pull REF`); Previous is the digest Repin
	// replaced.
	Pinned   time.Time `json:"pinned"`
	Previous Digest    `json:"previous,omitempty"`
}

// NeedsFirstPin reports whether ref can move under a skill: a registry
// reference by tag. A digest reference cannot; an archive or layout a
// manifest names is inside the bundle, whose digest covers it.
func NeedsFirstPin(ref Ref) bool {
	return ref.Transport == Registry && !strings.Contains(ref.Name, "@")
}

// pinsDir is the cache folder's ".pins": one FirstPin per (bundle, ref).
func (c *Cache) pinsDir() string { return filepath.Join(c.Dir, ".pins") }

func (c *Cache) firstPinPath(bundle string, ref Ref) string {
	sum := sha256.Sum256([]byte(bundle + "\x00" + ref.String()))
	return filepath.Join(c.pinsDir(), hex.EncodeToString(sum[:])+".json")
}

// PinFirst returns the FirstPin of skill's bundle digest bundle for p.Ref,
// recording p as that pin when there is none (recorded is then true). The
// caller compares the pin's Digest with p's: another digest means the tag
// moved since this version of the skill first ran.
func (c *Cache) PinFirst(skill, bundle string, p Pinned) (pin FirstPin, recorded bool, err error) {
	path := c.firstPinPath(bundle, p.Ref)
	release, err := filelock.Lock(strings.TrimSuffix(path, ".json")+".lock", "image pin")
	if err != nil {
		return FirstPin{}, false, errdefs.Wrap(errdefs.Unavailable, err, "image cache")
	}
	defer release()
	if pin, ok, err := readFirstPin(path); err != nil || ok {
		return pin, false, err
	}
	pin = FirstPin{Skill: skill, Bundle: bundle, Ref: p.Ref, Digest: p.Digest, Pinned: time.Now().UTC()}
	return pin, true, writeFirstPin(path, pin)
}

// Repin points every FirstPin of p.Ref at p.Digest — the operator's
// acceptance of a moved tag (`skillbox image pull REF`) — and returns the
// pins it changed, each with its Previous digest.
func (c *Cache) Repin(p Pinned) ([]FirstPin, error) {
	pins, err := c.FirstPins()
	if err != nil {
		return nil, err
	}
	var changed []FirstPin
	for _, pin := range pins {
		if pin.Ref != p.Ref || pin.Digest == p.Digest {
			continue
		}
		path := c.firstPinPath(pin.Bundle, pin.Ref)
		release, err := filelock.Lock(strings.TrimSuffix(path, ".json")+".lock", "image pin")
		if err != nil {
			return changed, errdefs.Wrap(errdefs.Unavailable, err, "image cache")
		}
		pin.Previous, pin.Digest, pin.Pinned = pin.Digest, p.Digest, time.Now().UTC()
		err = writeFirstPin(path, pin)
		release()
		if err != nil {
			return changed, err
		}
		changed = append(changed, pin)
	}
	return changed, nil
}

// FirstPins lists the recorded pins (a torn record is skipped: its next
// resolve records it again).
func (c *Cache) FirstPins() ([]FirstPin, error) {
	ents, err := os.ReadDir(c.pinsDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, errdefs.Wrap(errdefs.Unavailable, err, "image cache")
	}
	var out []FirstPin
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		pin, ok, err := readFirstPin(filepath.Join(c.pinsDir(), e.Name()))
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, pin)
		}
	}
	slices.SortFunc(out, func(a, b FirstPin) int { return strings.Compare(a.Skill+a.Bundle, b.Skill+b.Bundle) })
	return out, nil
}

func readFirstPin(path string) (FirstPin, bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return FirstPin{}, false, nil
	}
	if err != nil {
		return FirstPin{}, false, errdefs.Wrap(errdefs.Unavailable, err, "image cache")
	}
	var pin FirstPin
	if err := json.Unmarshal(data, &pin); err != nil || pin.Digest == "" || pin.Ref.Name == "" {
		return FirstPin{}, false, nil
	}
	return pin, true, nil
}

func writeFirstPin(path string, pin FirstPin) error {
	data, err := json.MarshalIndent(pin, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return errdefs.Wrap(errdefs.Unavailable, err, "image cache")
	}
	if err := atomicfile.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return errdefs.Wrap(errdefs.Unavailable, err, "image cache")
	}
	return nil
}
