package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/filelock"
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

// BuildSkill builds the Dockerfile dockerfile (bundle-relative) of the
// sealed bundle at dir, whose content digest is bundleDigest, with opts'
// builder and limits (DetectBuilder's when opts.Builder is zero), and
// records the image as the one built for that bundle digest (BuiltKey), so
// that BuiltFor finds it: `skillbox image build SKILL`. It builds even if
// an image is built for the key already (a rebuild, another digest).
func (c *Cache) BuildSkill(ctx context.Context, bundleDigest, dir, dockerfile string, opts BuildOptions) (*Image, Builder, error) {
	return c.buildSkill(ctx, bundleDigest, dir, dockerfile, opts, true)
}

// EnsureBuilt is BuildSkill unless an image is built for the key already,
// which it returns (unpacked): a call's build on first use, when the
// operator allows it. Builds for one key (any process, either function)
// exclude each other, so calls that find none built at once build once.
func (c *Cache) EnsureBuilt(ctx context.Context, bundleDigest, dir, dockerfile string, opts BuildOptions) (*Image, Builder, error) {
	return c.buildSkill(ctx, bundleDigest, dir, dockerfile, opts, false)
}

func (c *Cache) buildSkill(ctx context.Context, bundleDigest, dir, dockerfile string, opts BuildOptions, rebuild bool) (*Image, Builder, error) {
	key := BuiltKey(bundleDigest, dockerfile)
	release, err := filelock.Lock(filepath.Join(c.Dir, ".built", "for", key+".lock"), "image build")
	if err != nil {
		return nil, Builder{}, errdefs.Wrap(errdefs.Unavailable, err, "image cache")
	}
	defer release()
	if !rebuild {
		if p, ok, err := c.BuiltFor(key); err != nil {
			return nil, opts.Builder, err
		} else if ok {
			img, err := c.Ensure(ctx, p)
			return img, opts.Builder, err
		}
	}
	if opts.Builder.Name == "" {
		if opts.Builder, err = DetectBuilder(ctx); err != nil {
			return nil, Builder{}, err
		}
	}
	if !rebuild {
		c.progress("building %s with %s: no image is built for this bundle (%s) yet", dockerfile, opts.Builder.Name, bundleDigest)
	}
	opts.Context, opts.Dockerfile = dir, dockerfile
	img, err := c.Build(ctx, opts)
	if err != nil {
		return nil, opts.Builder, err
	}
	return img, opts.Builder, c.RecordBuilt(key, img)
}
