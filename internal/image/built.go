package image

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/skillbox-dev/skillbox/errdefs"
)

// BuiltKey names what a skill's image is built from: the bundle's content
// digest and the Dockerfile's path in it. A bundle edited in any byte has
// another key, so its old build is not used for it.
func BuiltKey(bundleDigest, dockerfile string) string {
	sum := sha256.Sum256([]byte(bundleDigest + "\x00" + filepath.ToSlash(filepath.Clean(dockerfile))))
	return hex.EncodeToString(sum[:])
}

// builtRecord is the file that maps a BuiltKey to the image built for it.
type builtRecord struct {
	Pinned Pinned `json:"pinned"`
}

func (c *Cache) builtRecord(key string) string {
	return filepath.Join(c.Dir, ".built", "for", key+".json")
}

// RecordBuilt notes that img was built for key (BuiltKey), so that
// BuiltFor finds it.
func (c *Cache) RecordBuilt(key string, img *Image) error {
	data, err := json.Marshal(builtRecord{Pinned: img.Pinned})
	if err != nil {
		return err
	}
	p := c.builtRecord(key)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return errdefs.Wrap(errdefs.Unavailable, err, "image cache")
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return errdefs.Wrap(errdefs.Unavailable, err, "image cache")
	}
	return os.Rename(tmp, p)
}

// BuiltFor returns the image built for key and still in the cache (its
// archive kept by Build: Ensure unpacks it again if needed); ok is false
// when none was built, or it was pruned since.
func (c *Cache) BuiltFor(key string) (p Pinned, ok bool, err error) {
	data, err := os.ReadFile(c.builtRecord(key))
	if errors.Is(err, fs.ErrNotExist) {
		return Pinned{}, false, nil
	}
	if err != nil {
		return Pinned{}, false, errdefs.Wrap(errdefs.Unavailable, err, "image cache")
	}
	var rec builtRecord
	if err := json.Unmarshal(data, &rec); err != nil || rec.Pinned.Digest == "" {
		return Pinned{}, false, nil // a torn or foreign record: build again
	}
	if _, ok := c.builtArchive(&Image{Pinned: rec.Pinned}); !ok {
		return Pinned{}, false, nil
	}
	if _, err := os.Stat(rec.Pinned.Ref.Name); err != nil {
		return Pinned{}, false, nil // pruned
	}
	return rec.Pinned, true, nil
}
