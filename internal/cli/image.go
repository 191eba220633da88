package cli

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/image"
	"github.com/skillbox-dev/skillbox/internal/lockfile"
	"github.com/skillbox-dev/skillbox/internal/trust"
	"github.com/skillbox-dev/skillbox/skill"
)

// imageListEnvelope is `image list --json`.
type imageListEnvelope struct {
	Cache  string         `json:"cache"`
	Images []*image.Image `json:"images"`
}

// imagePruneEnvelope is `image prune --json`.
type imagePruneEnvelope struct {
	Cache   string         `json:"cache"`
	Removed []*image.Image `json:"removed"`
	InUse   []*image.Image `json:"in_use"`
	// Pinned are the images kept because the trust store or ./skills.lock
	// pins them (a trusted or locked skill runs exactly that image).
	Pinned []*image.Image `json:"pinned"`
	// Freed is the file content removed, in bytes.
	Freed int64 `json:"freed"`
}

func cmdImage(ctx context.Context, c *cmdContext, args []string) error {
	const line = "list|prune [--json]"
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintf(c.stderr, "Usage: skillbox image %s\n\n  list   the unpacked OCI images in the cache: reference, digest, platform, size\n  prune  remove every unpacked image no running jail uses\n", line)
		if len(args) == 0 {
			return errdefs.New(errdefs.Invalid, "want a subcommand: list or prune (usage: skillbox image %s)", line)
		}
		return nil
	}
	switch args[0] {
	case "list":
		return c.imageList(args[1:])
	case "prune":
		return c.imagePrune(args[1:])
	}
	return errdefs.New(errdefs.Invalid, "unknown image subcommand %q: want list or prune (usage: skillbox image %s)", args[0], line)
}

// imageCache is the cache folder's "images".
func (c *cmdContext) imageCache() (*image.Cache, error) {
	dir, err := c.cacheDir()
	if err != nil {
		return nil, err
	}
	return &image.Cache{Dir: filepath.Join(dir, "images"), Progress: c.stderr}, nil
}

func (c *cmdContext) imageList(args []string) error {
	jsonOut, err := c.jsonOnly("image list", args)
	if err != nil {
		return err
	}
	cache, err := c.imageCache()
	if err != nil {
		return err
	}
	imgs, err := cache.List()
	if err != nil {
		return err
	}
	if imgs == nil {
		imgs = []*image.Image{}
	}
	if jsonOut {
		return writeJSON(c.stdout, imageListEnvelope{Cache: cache.Dir, Images: imgs}, false)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DIGEST\tSIZE\tPLATFORM\tUNPACKED\tREF")
	for _, img := range imgs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", img.Digest.Short(), skill.FormatSize(img.Size), img.Platform, img.Unpacked.Local().Format(time.DateTime), img.Ref)
	}
	return tw.Flush()
}

func (c *cmdContext) imagePrune(args []string) error {
	jsonOut, err := c.jsonOnly("image prune", args)
	if err != nil {
		return err
	}
	cache, err := c.imageCache()
	if err != nil {
		return err
	}
	pins, err := c.imagePins()
	if err != nil {
		return err
	}
	res, err := cache.Prune(func(img *image.Image) bool { return pins[string(img.Digest)] != "" })
	if err != nil {
		return err
	}
	env := imagePruneEnvelope{Cache: cache.Dir, Removed: res.Removed, InUse: res.InUse, Pinned: []*image.Image{}}
	if left, err := cache.List(); err == nil {
		for _, img := range left {
			if pins[string(img.Digest)] != "" {
				env.Pinned = append(env.Pinned, img)
			}
		}
	}
	for _, img := range res.Removed {
		env.Freed += img.Size
	}
	if jsonOut {
		return writeJSON(c.stdout, env, false)
	}
	for _, img := range res.Removed {
		fmt.Fprintf(c.stdout, "removed %s %s (%s)\n", img.Digest.Short(), img.Ref, skill.FormatSize(img.Size))
	}
	for _, img := range res.InUse {
		fmt.Fprintf(c.stdout, "kept %s %s: in use by a running jail\n", img.Digest.Short(), img.Ref)
	}
	for _, img := range env.Pinned {
		fmt.Fprintf(c.stdout, "kept %s %s: pinned by %s\n", img.Digest.Short(), img.Ref, pins[string(img.Digest)])
	}
	fmt.Fprintf(c.stdout, "freed %s\n", skill.FormatSize(env.Freed))
	return nil
}

// imagePins are the image digests prune keeps, each with who pins it: the
// trust store's entries and those of ./skills.lock (when there is one). A
// store or lockfile that cannot be read stops the prune: removing what
// they may pin is not the safe way to fail.
func (c *cmdContext) imagePins() (map[string]string, error) {
	pins := map[string]string{}
	if path := c.trustStorePath(); path != "" {
		st, err := trust.Open(path)
		if err != nil {
			return nil, err
		}
		for _, e := range st.Skills {
			if e.Image != nil {
				pins[e.Image.Digest] = "the trust store (" + e.ID + ")"
			}
		}
	}
	l, err := lockfile.Load(lockfile.Name)
	switch {
	case err == nil:
		for _, id := range slices.Sorted(maps.Keys(l.Skills)) {
			if e := l.Skills[id]; e.Image != nil && pins[e.Image.Digest] == "" {
				pins[e.Image.Digest] = lockfile.Name + " (" + id + ")"
			}
		}
	case errdefs.KindOf(err) != errdefs.NotFound:
		return nil, err
	}
	return pins, nil
}
