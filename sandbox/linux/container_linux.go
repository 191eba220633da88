package linux

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/cgroup"
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
	img     *image.Image
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

// imageCacheFor is imageCache with ctx's progress writer
// (image.WithProgress: the CLI's run gives its stderr), where a pull on
// first use says what it does.
func (d *Driver) imageCacheFor(ctx context.Context) (*image.Cache, error) {
	c, err := d.imageCache()
	if err != nil {
		return nil, err
	}
	c.Progress = image.ProgressFrom(ctx)
	return c, nil
}

// openContainer resolves the Spec's image (a relative path is relative to
// the bundle: the sealed copy, whose digest covers it), pins it, makes
// sure it is unpacked, marks it in use and makes the jail's root of it.
// A Spec that pins a digest (trust, lockfile) gets that image or a denial.
func (d *Driver) openContainer(ctx context.Context, spec sandbox.Spec) (*containerRoot, error) {
	c := spec.Container
	cache, err := d.imageCacheFor(ctx)
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
		if !built && c.Build {
			// The operator allows building on first use (--build-images,
			// build_images): the same build as `skillbox image build`.
			img, _, err := cache.EnsureBuilt(ctx, spec.Digest, spec.BundleDir, c.Dockerfile, image.BuildOptions{})
			if err != nil {
				return nil, fmt.Errorf("%s: building its image from %s on first use: %w", spec.SkillID, c.Dockerfile, err)
			}
			pinned, built = img.Pinned, true
		}
		if !built {
			return nil, errdefs.New(errdefs.Unavailable,
				"backend linux: %s runs in an image built from its %s, and none is built for this version of the skill: run 'skillbox image build %s' (needs buildah and runc), or let calls build it on first use (--build-images, or build_images: true in the policy file)",
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
	return &containerRoot{root: root, pinned: pinned, img: img, release: release}, nil
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

// pythonProbeTimeout bounds the run of an image's python that reports its
// version.
const pythonProbeTimeout = 30 * time.Second

// checkPython makes sure the image's python can run the harness (CPython
// image.MinPython or later) before any call: once per image and
// interpreter path, recorded beside the unpacked image (its content, and
// so the answer, never changes), it runs the python with
// image.PythonProbeArgs in a fresh jail of js's kind — without the bundle,
// the network, granted variables or read paths, in a cgroup with the
// skill's limits — and reads the one line it prints. The image's python is
// never run outside a jail. An interpreter that fails or is too old or not
// CPython makes the skill invalid, naming the image, the path and what it
// said.
func (b *box) checkPython(ctx context.Context, js jail.Spec) error {
	c := b.container
	python := c.root.Python
	if info, ok := c.img.PythonRecord(python); ok {
		return c.pythonErr(info)
	}
	js.Bundle, js.Egress, js.Env, js.ReadPaths = "", nil, nil, nil
	js.Tmpfs, js.WriteFDs, js.OwnFDs = nil, nil, false
	pj, err := jail.New(js)
	if err != nil {
		return err
	}
	var cg *cgroup.Group
	if b.cgHost != nil && len(b.controllers) > 0 {
		name := strconv.Itoa(os.Getpid()) + "-" + strconv.FormatUint(jailSeq.Add(1), 10)
		if cg, err = b.cgHost.New(name, b.cgLimits(), b.controllers); err != nil {
			return errdefs.Wrap(errdefs.Internal, err, "jail cgroup")
		}
		defer cg.Remove()
	}
	ctx, cancel := context.WithTimeout(ctx, pythonProbeTimeout)
	defer cancel()
	launch, run := pj.Launch(ctx, jail.LaunchOptions{Cgroup: cg})
	defer run.Close()
	stdout, stderr := &capped{max: 4096}, &capped{max: 4096}
	cmd := &exec.Cmd{Path: python, Args: append([]string{python}, image.PythonProbeArgs...), Stdout: stdout, Stderr: stderr}
	if err := launch(cmd); err != nil {
		return errdefs.Wrap(errdefs.Internal, err, "start jail (python version of image "+c.pinned.String()+")")
	}
	stop := context.AfterFunc(ctx, func() { cmd.Process.Kill() })
	werr := cmd.Wait()
	stop()
	what := "image " + c.pinned.String() + ": its python " + python
	if ctx.Err() != nil {
		return errdefs.New(errdefs.Timeout, "%s did not report its version within %s", what, pythonProbeTimeout)
	}
	if werr != nil {
		msg := fmt.Sprintf("%s could not report its version (%v); skillbox's harness needs CPython %d.%d or later",
			what, werr, image.MinPython[0], image.MinPython[1])
		if tail := strings.TrimSpace(stderr.String()); tail != "" {
			msg += "; stderr: " + tail
		}
		return errdefs.New(errdefs.Invalid, "%s", msg)
	}
	info, err := image.ParsePythonInfo(stdout.Bytes())
	if err != nil {
		return errdefs.New(errdefs.Invalid, "%s did not report its version: %v", what, err)
	}
	c.img.RecordPython(python, info) // a record not written costs a probe next time
	return c.pythonErr(info)
}

// pythonErr is the invalid of an image whose python cannot run the
// harness, nil when it can.
func (c *containerRoot) pythonErr(info image.PythonInfo) error {
	why := info.Supported()
	if why == "" {
		return nil
	}
	return errdefs.New(errdefs.Invalid, "image %s: its python %s %s: skillbox's harness needs CPython %d.%d or later; name another interpreter with container.python, or use another image",
		c.pinned.String(), c.root.Python, why, image.MinPython[0], image.MinPython[1])
}

// capped keeps the first max bytes written to it and discards the rest.
type capped struct {
	bytes.Buffer
	max int
}

func (w *capped) Write(p []byte) (int, error) {
	if room := w.max - w.Len(); room > 0 {
		w.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
