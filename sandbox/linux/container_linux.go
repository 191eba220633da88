package linux

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strconv"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/cgroup"
	"github.com/skillbox-dev/skillbox/internal/image"
	"github.com/skillbox-dev/skillbox/internal/imageroot"
	"github.com/skillbox-dev/skillbox/internal/jail"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// containerRoot is what Open prepared for a skill that runs in an image
// (Spec.Container): internal/imageroot's, shared with the gvisor backend.
type containerRoot = imageroot.Root

// openContainer opens the Spec's image (imageroot.Open: resolved, pinned,
// unpacked, in use until Close). A Spec that pins a digest (trust,
// lockfile) gets that image or a denial.
func (d *Driver) openContainer(ctx context.Context, spec sandbox.Spec) (*containerRoot, error) {
	return imageroot.Open(ctx, d.opts.ImageCache, Name, spec)
}

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
	python := c.Root.Python
	if err, ok := c.Recorded(); ok {
		return err
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
	ctx, cancel := context.WithTimeout(ctx, imageroot.PythonProbeTimeout)
	defer cancel()
	launch, run := pj.Launch(ctx, jail.LaunchOptions{Cgroup: cg})
	defer run.Close()
	stdout, stderr := &capped{max: 4096}, &capped{max: 4096}
	cmd := &exec.Cmd{Path: python, Args: append([]string{python}, image.PythonProbeArgs...), Stdout: stdout, Stderr: stderr}
	if err := launch(cmd); err != nil {
		return errdefs.Wrap(errdefs.Internal, err, "start jail (python version of image "+c.Pinned.String()+")")
	}
	stop := context.AfterFunc(ctx, func() { cmd.Process.Kill() })
	werr := cmd.Wait()
	stop()
	return c.Probed(stdout.Bytes(), stderr.Bytes(), werr, ctx.Err() != nil)
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
