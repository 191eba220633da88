package linux

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/image"
	"github.com/skillbox-dev/skillbox/internal/jail"
	"github.com/skillbox-dev/skillbox/internal/userdir"
	"github.com/skillbox-dev/skillbox/internal/worker"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// containerRoot is what Open prepared for a skill that runs in an image
// (Spec.Container): the jail's root, the pinned image, and the release of
// its in-use mark, held while the sandbox is open so that `skillbox image
// prune` keeps the image.
type containerRoot struct {
	root    jail.Image
	pinned  image.Pinned
	release func()
}

// imageCache is the image cache the driver pulls into and runs from.
func (d *Driver) imageCache() (*image.Cache, error) {
	dir := d.opts.ImageCache
	if dir == "" {
		cache, err := userdir.Cache(os.Getenv)
		if err != nil {
			return nil, errdefs.Wrap(errdefs.Unavailable, err, "image cache")
		}
		dir = filepath.Join(cache, "images")
	}
	return &image.Cache{Dir: dir}, nil
}

// openContainer resolves the Spec's image (a relative path is relative to
// the bundle: the sealed copy, whose digest covers it), pins it, makes
// sure it is unpacked, marks it in use and makes the jail's root of it.
// A Spec that pins a digest (trust, lockfile) gets that image or a denial.
func (d *Driver) openContainer(ctx context.Context, spec sandbox.Spec) (*containerRoot, error) {
	c := spec.Container
	cache, err := d.imageCache()
	if err != nil {
		return nil, err
	}
	var pinned image.Pinned
	if c.Image == "" {
		// Built from the bundle's Dockerfile by `skillbox image build`,
		// for exactly this bundle digest; never built on a call.
		var built bool
		if pinned, built, err = cache.BuiltFor(image.BuiltKey(spec.Digest, c.Dockerfile)); err != nil {
			return nil, err
		}
		if !built {
			return nil, errdefs.New(errdefs.Unavailable,
				"backend linux: %s runs in an image built from its %s, and none is built for this version of the skill: run 'skillbox image build %s' (needs buildah and runc)",
				spec.SkillID, c.Dockerfile, spec.SkillID)
		}
	} else {
		ref, err := image.ParseRef(c.Image, spec.BundleDir)
		if err != nil {
			return nil, err
		}
		if pinned, err = cache.Resolve(ctx, ref); err != nil {
			return nil, err
		}
	}
	if c.Digest != "" && string(pinned.Digest) != c.Digest {
		what := c.Image
		if what == "" {
			what = "built from " + c.Dockerfile
		}
		return nil, errdefs.New(errdefs.Denied, "image %s of %s is now %s, not the %s that was trusted or locked; review the new image, then 'skillbox trust' or 'skillbox lock' the skill again",
			what, spec.SkillID, pinned.Digest, c.Digest)
	}
	if _, err := cache.Ensure(ctx, pinned); err != nil {
		return nil, err
	}
	img, release, err := cache.Use(pinned.Digest)
	if err != nil {
		return nil, err
	}
	root, err := jail.NewImage(img.Rootfs, c.Python, img.Config.Env)
	if err != nil {
		release()
		return nil, errdefs.Wrap(errdefs.KindOf(err), err, "image "+pinned.String())
	}
	return &containerRoot{root: root, pinned: pinned, release: release}, nil
}

// trusted reports whether the operator lists the image's digest in
// trusted_environments: only then may a process that serves several calls
// (a zygote) run its interpreter and standard library.
func (c *containerRoot) trusted(spec sandbox.Spec) bool {
	return slices.Contains(spec.TrustedEnvironments, string(c.pinned.Digest))
}

// exitedErr explains a worker in the image that exited before its
// harness was ready: the image's python may be unable to run the harness
// (not CPython, or older than 3.8), or the skill's import exited. The kind
// stays the worker's (a skill error): which of the two it was only the
// worker's stderr, quoted (its last 1 KiB), can tell.
func (c *containerRoot) exitedErr(err error, stderr []byte) error {
	var se *errdefs.SkillError
	if !errors.As(err, &se) || se.Type != worker.TypeWorkerExited {
		return err
	}
	msg := se.Message + " before it was ready, in image " + c.pinned.String() + ": its python " + c.root.Python +
		" may not run skillbox's harness (CPython 3.8 or later), or the skill's import exited"
	if tail := strings.TrimSpace(string(stderr)); tail != "" {
		if len(tail) > 1024 {
			tail = "…" + tail[len(tail)-1024:]
		}
		msg += "; stderr: " + tail
	}
	return &errdefs.SkillError{Type: se.Type, Message: msg, Traceback: se.Traceback}
}
