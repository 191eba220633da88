// Package imageroot opens the image a container skill runs in
// (sandbox.Spec.Container, a manifest's execution: container) for the
// backends that run images (linux, gvisor): the one way to resolve,
// pin, unpack and hold an image, so that every backend runs exactly the
// image that was trusted or locked, or refuses.
package imageroot

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/egress"
	"github.com/skillbox-dev/skillbox/internal/image"
	"github.com/skillbox-dev/skillbox/internal/jail"
	"github.com/skillbox-dev/skillbox/internal/userdir"
	"github.com/skillbox-dev/skillbox/internal/worker"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// Root is an opened image: its root file system as a jail root, the
// pinned image, and the release of its in-use mark, held while the
// sandbox is open so that `skillbox image prune` keeps the image.
type Root struct {
	// Root is the image's unpacked root file system and its python.
	Root jail.Image
	// Pinned is the image's reference and digest.
	Pinned image.Pinned
	// Image is the unpacked image in the cache.
	Image *image.Image
	// Release drops the in-use mark (once the sandbox is closed).
	Release func()
}

// Cache is the image cache in dir; empty means the cache folder's
// "images" ($XDG_CACHE_HOME/skillbox/images). A pull on first use reports
// progress to ctx's writer (image.WithProgress: the CLI's run gives its
// stderr).
func Cache(ctx context.Context, dir string) (*image.Cache, error) {
	if dir == "" {
		cache, err := userdir.Cache(os.Getenv)
		if err != nil {
			return nil, errdefs.Wrap(errdefs.Unavailable, err, "image cache")
		}
		dir = filepath.Join(cache, "images")
	}
	return &image.Cache{Dir: dir, Progress: image.ProgressFrom(ctx)}, nil
}

// BuildNetwork is the network grant of an image build
// (image.BuildOptions.Network): hosts reached through the egress proxy
// only, names in resolve sent to fixed addresses (and those granted), each
// decision given to audit. No hosts: nil, no network.
func BuildNetwork(hosts []sandbox.HostPort, resolve map[string][]netip.Addr, audit func(egress.Event)) (*egress.Config, error) {
	if len(hosts) == 0 {
		return nil, nil
	}
	cfg, err := jail.EgressConfig(sandbox.Spec{Network: hosts, Resolve: resolve}, audit)
	if err != nil {
		return nil, err
	}
	return &cfg, nil
}

// Open resolves spec's image (a relative path is relative to the bundle:
// the sealed copy, whose digest covers it), pins it, makes sure it is
// unpacked in the cache in cacheDir (see Cache), marks it in use and makes
// the jail root of it. A Spec that pins a digest (trust, lockfile) gets
// that image or errdefs.Denied; a tag nothing pins is held to what it
// named on this bundle digest's first run (firstPin). An image built from
// the bundle's Dockerfile must have been built for this bundle digest
// (`skillbox image build`), or is built now when the operator allows it
// (spec.Container.Build: --build-images, build_images). backend names the
// caller in messages.
func Open(ctx context.Context, cacheDir, backend string, spec sandbox.Spec) (*Root, error) {
	c := spec.Container
	cache, err := Cache(ctx, cacheDir)
	if err != nil {
		return nil, err
	}
	var pinned image.Pinned
	if c.Image == "" {
		var built bool
		if pinned, built, err = cache.BuiltFor(image.BuiltKey(spec.Digest, c.Dockerfile)); err != nil {
			return nil, err
		}
		if !built && c.Build {
			// The operator allows building on first use: the same build
			// as `skillbox image build`.
			// Its hosts (build_net) are the build's alone, not the
			// call's; each decision goes to the audit sink of ctx.
			network, err := BuildNetwork(c.BuildNetwork, nil, egress.AuditFrom(ctx))
			if err != nil {
				return nil, err
			}
			img, _, err := cache.EnsureBuilt(ctx, spec.Digest, spec.BundleDir, c.Dockerfile, image.BuildOptions{Network: network})
			if err != nil {
				return nil, fmt.Errorf("%s: building its image from %s on first use: %w", spec.SkillID, c.Dockerfile, err)
			}
			pinned, built = img.Pinned, true
		}
		if !built {
			return nil, errdefs.New(errdefs.Unavailable,
				"backend %s: %s runs in an image built from its %s, and none is built for this version of the skill: run 'skillbox image build %s' (needs buildah and runc), or let calls build it on first use (--build-images, or build_images: true in the policy file)",
				backend, spec.SkillID, c.Dockerfile, spec.SkillID)
		}
	} else {
		ref, err := image.ParseRef(c.Image, spec.BundleDir)
		if err != nil {
			return nil, err
		}
		if pinned, err = cache.Resolve(ctx, ref); err != nil {
			return nil, err
		}
		if c.Digest == "" && image.NeedsFirstPin(ref) {
			if err := firstPin(cache, spec, pinned); err != nil {
				return nil, err
			}
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
	return &Root{Root: root, Pinned: pinned, Image: img, Release: release}, nil
}

// firstPin holds a skill that nothing pins (not trusted by the store, not
// locked) to the image its tag resolved to when this version of it (its
// bundle digest) first ran (image.Cache.PinFirst): a tag that moved since
// is denied, naming how the operator accepts the new image.
func firstPin(cache *image.Cache, spec sandbox.Spec, pinned image.Pinned) error {
	pin, _, err := cache.PinFirst(spec.SkillID, spec.Digest, pinned)
	if err != nil {
		return err
	}
	if pin.Digest == pinned.Digest {
		return nil
	}
	ref := pinned.Ref.String()
	return &errdefs.DeniedError{
		Permission: "image " + ref + " of " + spec.SkillID,
		Reason: fmt.Sprintf("the tag now resolves to %s, not the %s this version of the skill first ran on (pinned %s); a moved tag is other code, so it does not run unreviewed",
			pinned.Digest, pin.Digest, pin.Pinned.Format(time.RFC3339)),
		Grant: "'skillbox image pull " + ref + "' once the new image is reviewed (it re-pins the tag for every skill that uses it), or pin the skill with 'skillbox lock'",
	}
}

// Trusted reports whether the operator lists the image's digest in
// trusted_environments: only then may a process that serves several calls
// (a zygote) run its interpreter and standard library.
func (r *Root) Trusted(spec sandbox.Spec) bool {
	return slices.Contains(spec.TrustedEnvironments, string(r.Pinned.Digest))
}

// Interpreter names the image's python for messages.
func (r *Root) Interpreter() string {
	return r.Root.Program() + " of image " + r.Pinned.String()
}

// ExitedErr explains a worker in the image that exited before its
// harness was ready: the image's python may be unable to run the harness
// (not CPython, or older than 3.8), or the skill's import exited. The kind
// stays the worker's (a skill error): which of the two it was only the
// worker's stderr, quoted (its last 1 KiB), can tell.
func (r *Root) ExitedErr(err error, stderr []byte) error {
	var se *errdefs.SkillError
	if !errors.As(err, &se) || se.Type != worker.TypeWorkerExited {
		return err
	}
	msg := se.Message + " before it was ready, in image " + r.Pinned.String() + ": its python " + r.Root.Python +
		" may not run skillbox's harness (CPython 3.8 or later), or the skill's import exited"
	if tail := strings.TrimSpace(string(stderr)); tail != "" {
		if len(tail) > 1024 {
			tail = "…" + tail[len(tail)-1024:]
		}
		msg += "; stderr: " + tail
	}
	return &errdefs.SkillError{Type: se.Type, Message: msg, Traceback: se.Traceback}
}

// PythonErr is the invalid of an image whose python cannot run the
// harness, nil when it can.
func (r *Root) PythonErr(info image.PythonInfo) error {
	why := info.Supported()
	if why == "" {
		return nil
	}
	return errdefs.New(errdefs.Invalid, "image %s: its python %s %s: skillbox's harness needs CPython %d.%d or later; name another interpreter with container.python, or use another image",
		r.Pinned.String(), r.Root.Python, why, image.MinPython[0], image.MinPython[1])
}

// PythonProbeTimeout bounds the run of an image's python that reports its
// version.
const PythonProbeTimeout = 30 * time.Second

// Recorded returns the verdict recorded for the image's python (its
// content, and so the answer, never changes), if any: nil when it runs
// the harness, PythonErr's invalid when not.
func (r *Root) Recorded() (err error, ok bool) {
	info, ok := r.Image.PythonRecord(r.Root.Python)
	if !ok {
		return nil, false
	}
	return r.PythonErr(info), true
}

// Probed judges the run of the image's python with image.PythonProbeArgs
// in a sandbox (never on the host): its stdout and stderr, how it ended
// (runErr) and whether PythonProbeTimeout ran out. It records the answer
// beside the unpacked image, so that the next sandbox need not run it,
// and returns nil when the python can run the harness. A python that
// fails, is too old or is not CPython makes the skill invalid, naming the
// image, the path and what it said.
func (r *Root) Probed(stdout, stderr []byte, runErr error, timedOut bool) error {
	what := "image " + r.Pinned.String() + ": its python " + r.Root.Python
	if timedOut {
		return errdefs.New(errdefs.Timeout, "%s did not report its version within %s", what, PythonProbeTimeout)
	}
	if runErr != nil {
		msg := fmt.Sprintf("%s could not report its version (%v); skillbox's harness needs CPython %d.%d or later",
			what, runErr, image.MinPython[0], image.MinPython[1])
		if tail := strings.TrimSpace(string(stderr)); tail != "" {
			msg += "; stderr: " + tail
		}
		return errdefs.New(errdefs.Invalid, "%s", msg)
	}
	info, err := image.ParsePythonInfo(stdout)
	if err != nil {
		return errdefs.New(errdefs.Invalid, "%s did not report its version: %v", what, err)
	}
	r.Image.RecordPython(r.Root.Python, info) // a record not written costs a probe next time
	return r.PythonErr(info)
}
