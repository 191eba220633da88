package cli

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/skillbox-dev/skillbox"
	"github.com/skillbox-dev/skillbox/audit"
	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/egress"
	"github.com/skillbox-dev/skillbox/internal/image"
	"github.com/skillbox-dev/skillbox/internal/imageroot"
	"github.com/skillbox-dev/skillbox/internal/lockfile"
	"github.com/skillbox-dev/skillbox/internal/trust"
	"github.com/skillbox-dev/skillbox/policy"
	"github.com/skillbox-dev/skillbox/sandbox"
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
	// Pinned are the images kept because the trust store or the lockfile
	// (--lockfile, else ./skills.lock) pins them (a trusted or locked skill
	// runs exactly that image).
	Pinned []*image.Image `json:"pinned"`
	// Freed is the file content removed, in bytes.
	Freed int64 `json:"freed"`
}

// imageBuildEnvelope is `image build --json`.
type imageBuildEnvelope struct {
	Cache string `json:"cache"`
	// Builder is the builder that built it.
	Builder image.Builder `json:"builder"`
	// Image is the built image, unpacked in the cache and pinned by
	// digest (its ref is the OCI archive the cache keeps of it).
	Image *image.Image `json:"image"`
}

func cmdImage(ctx context.Context, c *cmdContext, args []string) error {
	const line = "list|pull|prune|build [--json]"
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintf(c.stderr, "Usage: skillbox image %s\n\n  list   the unpacked OCI images in the cache: reference, digest, platform, size\n  pull   resolve an image reference, unpack it into the cache and print its digest\n  prune  remove every unpacked image no running jail uses\n  build  build a Dockerfile with an installed builder (buildah, podman) into the cache\n", line)
		if len(args) == 0 {
			return errdefs.New(errdefs.Invalid, "want a subcommand: list, pull, prune or build (usage: skillbox image %s)", line)
		}
		return nil
	}
	switch args[0] {
	case "list":
		return c.imageList(args[1:])
	case "pull":
		return c.imagePull(ctx, args[1:])
	case "prune":
		return c.imagePrune(args[1:])
	case "build":
		return c.imageBuild(ctx, args[1:])
	}
	return errdefs.New(errdefs.Invalid, "unknown image subcommand %q: want list, pull, prune or build (usage: skillbox image %s)", args[0], line)
}

// imagePullEnvelope is `image pull --json`.
type imagePullEnvelope struct {
	Cache string `json:"cache"`
	// Pinned is the reference pinned to the digest pulled
	// (REPOSITORY@sha256:… for a registry's image).
	Pinned string `json:"pinned"`
	// Image is the unpacked image's record.
	Image *image.Image `json:"image"`
	// Repinned are the skill versions whose first-run pin of this tag
	// (image.FirstPin) the pull moved to the image pulled, each with its
	// previous digest.
	Repinned []image.FirstPin `json:"repinned"`
}

// imagePull is `skillbox image pull REF`: resolves REF (a registry
// reference, or oci-archive:PATH, docker-archive:PATH, oci:DIR relative
// to the working folder), unpacks the image it names now into the cache
// (progress on stderr) and prints its digest.
func (c *cmdContext) imagePull(ctx context.Context, args []string) error {
	fs := newFlags(c, "image pull", "REF [--json]")
	jsonOut := fs.Bool("json", false, "print JSON")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 1, "one image reference (a registry reference, oci-archive:PATH, docker-archive:PATH or oci:DIR)"); err != nil {
		return err
	}
	arg := pos[0]
	for _, t := range []image.Transport{image.OCIArchive, image.DockerArchive, image.OCILayout} {
		if p, ok := strings.CutPrefix(arg, string(t)+":"); ok && p != "" && !filepath.IsAbs(p) {
			abs, err := filepath.Abs(p)
			if err != nil {
				return errdefs.Wrap(errdefs.Invalid, err, "image "+arg)
			}
			arg = string(t) + ":" + abs
		}
	}
	ref, err := image.ParseRef(arg, "")
	if err != nil {
		return err
	}
	cache, err := c.imageCache()
	if err != nil {
		return err
	}
	img, err := cache.Pull(ctx, ref)
	if err != nil {
		return err
	}
	// Pulling a tag accepts what it names now for the skills that first
	// ran on an older image of it.
	repinned := []image.FirstPin{}
	if image.NeedsFirstPin(ref) {
		changed, err := cache.Repin(img.Pinned)
		repinned = append(repinned, changed...)
		for _, pin := range changed {
			fmt.Fprintf(c.stderr, "image: re-pinned %s for %s (bundle %s): %s, was %s\n", ref, pin.Skill, pin.Bundle, pin.Digest, pin.Previous)
			if aerr := c.record(audit.Record{Event: audit.EventImagePin, Skill: pin.Skill, Digest: pin.Bundle,
				Detail: fmt.Sprintf("%s: %s, was %s", ref, pin.Digest, pin.Previous)}); aerr != nil {
				return aerr
			}
		}
		if err != nil {
			return err
		}
	}
	if *jsonOut {
		return writeJSON(c.stdout, imagePullEnvelope{Cache: cache.Dir, Pinned: img.Pinned.String(), Image: img, Repinned: repinned}, false)
	}
	fmt.Fprintln(c.stdout, img.Digest)
	return nil
}

// imageBuild is `skillbox image build SKILL | --file DOCKERFILE [--context
// DIR]`: builds with the detected builder into the image cache and prints
// the image's digest. A SKILL's build (its container.dockerfile, from the
// sealed bundle) is recorded for its calls to find.
func (c *cmdContext) imageBuild(ctx context.Context, args []string) error {
	fs := newFlags(c, "image build", "SKILL | --file DOCKERFILE [--context DIR] [--allow-net HOST[:PORT]]... [--egress-resolve HOST=IP]... [--policy FILE] [--timeout DURATION] [--json]")
	jsonOut := fs.Bool("json", false, "print JSON")
	file := fs.String("file", "", "the `DOCKERFILE` to build (instead of a SKILL)")
	dir := fs.String("context", "", "the build's context `DIR`, which holds the Dockerfile and every file it uses (default: the Dockerfile's folder)")
	timeout := fs.Duration("timeout", image.DefaultBuildTimeout, "stop the build after `DURATION`")
	var allowNet, egressResolve listFlag
	fs.Var(&allowNet, "allow-net", "let the build's RUN steps reach `HOST[:PORT]`, through skillbox's egress proxy only (repeatable; a SKILL's policy entry adds its build_net); default: no network")
	fs.Var(&egressResolve, "egress-resolve", "send a granted host name to a fixed address, `HOST=IP`, granting that address (repeatable)")
	fs.StringVar(&c.policyPath, "policy", "", "policy `FILE` (default $XDG_CONFIG_HOME/skillbox/policy.yaml if it exists): a SKILL's build_net")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) > 1:
		return errdefs.New(errdefs.Invalid, "want one SKILL or --file DOCKERFILE (usage: skillbox image build %s)", fs.line)
	case len(pos) == 1 && (*file != "" || *dir != ""):
		return errdefs.New(errdefs.Invalid, "a SKILL's Dockerfile and context come from its manifest: drop --file and --context (usage: skillbox image build %s)", fs.line)
	case len(pos) == 0 && *file == "":
		return errdefs.New(errdefs.Invalid, "want a SKILL or --file DOCKERFILE (usage: skillbox image build %s)", fs.line)
	}
	if *timeout <= 0 {
		return errdefs.New(errdefs.Invalid, "--timeout %s: want a positive duration", *timeout)
	}
	cache, err := c.imageCache()
	if err != nil {
		return err
	}
	opts := image.BuildOptions{Timeout: *timeout}
	grant := buildGrant{allowNet: allowNet, resolve: egressResolve}
	defer grant.close()
	var img *image.Image
	if len(pos) == 1 {
		sb, err := c.skillBuild(pos[0])
		if err != nil {
			return err
		}
		if opts.Network, err = grant.config(c, sb.id, sb.digest); err != nil {
			return err
		}
		if img, opts.Builder, err = cache.BuildSkill(ctx, sb.digest, sb.dir, sb.dockerfile, opts); err != nil {
			return err
		}
	} else {
		df, err := filepath.Abs(*file)
		if err != nil {
			return errdefs.Wrap(errdefs.Invalid, err, "--file")
		}
		opts.Context, opts.Dockerfile = filepath.Dir(df), df
		if *dir != "" {
			opts.Context = *dir
		}
		if opts.Network, err = grant.config(c, "", ""); err != nil {
			return err
		}
		if opts.Builder, err = image.DetectBuilder(ctx); err != nil {
			return err
		}
		if img, err = cache.Build(ctx, opts); err != nil {
			return err
		}
	}
	if *jsonOut {
		return writeJSON(c.stdout, imageBuildEnvelope{Cache: cache.Dir, Builder: opts.Builder, Image: img}, false)
	}
	fmt.Fprintln(c.stdout, img.Digest)
	return nil
}

// skillBuild is what a skill's build of its container.dockerfile needs:
// the sealed copy of its bundle (the bytes its digest names) and that
// digest, under which image.Cache.BuildSkill records the image for its
// calls to find.
func (c *cmdContext) skillBuild(ref string) (skillBuildInput, error) {
	rt, closeRT, err := c.runtime(false)
	if err != nil {
		return skillBuildInput{}, err
	}
	defer closeRT()
	s, err := rt.Resolve(ref)
	if err != nil {
		return skillBuildInput{}, err
	}
	m := s.Bundle.Manifest
	if !m.Containerized() || m.Container == nil || m.Container.Dockerfile == "" {
		return skillBuildInput{}, errdefs.New(errdefs.Invalid, "%s names no container.dockerfile in its manifest: nothing to build", s.ID)
	}
	cache, err := c.cacheDir()
	if err != nil {
		return skillBuildInput{}, err
	}
	sealed, err := skill.Seal(s, filepath.Join(cache, "bundles"))
	if err != nil {
		return skillBuildInput{}, err
	}
	return skillBuildInput{id: s.ID, dir: sealed, digest: s.Digest, dockerfile: m.Container.Dockerfile}, nil
}

type skillBuildInput struct{ id, dir, digest, dockerfile string }

// buildGrant is the network grant of one `image build`: its --allow-net
// and --egress-resolve, plus a skill's build_net from the policy file;
// each egress decision is an audit record.
type buildGrant struct {
	allowNet, resolve []string
	log               *audit.Log
}

// config is the build's image.BuildOptions.Network for skill id (with its
// bundle digest; "" for a Dockerfile of --file), nil without a grant.
func (g *buildGrant) config(c *cmdContext, id, digest string) (*egress.Config, error) {
	var hosts []sandbox.HostPort
	for _, h := range g.allowNet {
		hp, err := policy.ParseHostPort(h)
		if err != nil {
			return nil, errdefs.New(errdefs.Invalid, "--allow-net %q: %v", h, err)
		}
		hosts = append(hosts, hp)
	}
	if id != "" {
		pol, err := c.policy()
		if err != nil {
			return nil, err
		}
		more, err := pol.BuildNetwork(id)
		if err != nil {
			return nil, err
		}
		hosts = append(hosts, more...)
	}
	if len(hosts) == 0 {
		if len(g.resolve) > 0 {
			return nil, errdefs.New(errdefs.Invalid, "--egress-resolve without a host granted to the build (--allow-net)")
		}
		return nil, nil
	}
	resolve := map[string][]netip.Addr{}
	for _, v := range g.resolve {
		host, ip, err := policy.ParseResolve(v)
		if err != nil {
			return nil, errdefs.New(errdefs.Invalid, "--egress-resolve %q: %v", v, err)
		}
		resolve[host] = append(resolve[host], ip)
	}
	log, err := c.auditLog()
	if err != nil {
		return nil, err
	}
	g.log = log
	return imageroot.BuildNetwork(hosts, resolve, func(ev egress.Event) {
		rec := ev.Record()
		rec.Skill, rec.Digest = id, digest
		rec.Detail = "image build: " + rec.Detail
		if err := log.Write(rec); err != nil {
			fmt.Fprintf(c.stderr, "skillbox: audit write failed: %v\n", err)
		}
	})
}

func (g *buildGrant) close() {
	if g.log != nil {
		g.log.Close()
	}
}

// imageProgress prints the progress of a backend's pull of a container
// skill's image on first use on stderr (nothing when it is unpacked).
func (c *cmdContext) imageProgress() skillbox.Option {
	return skillbox.WithImageProgress(func(l string) { fmt.Fprintf(c.stderr, "skillbox: %s\n", l) })
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
	fs := newFlags(c, "image prune", "[--lockfile FILE] [--json]")
	jsonOut := fs.Bool("json", false, "print JSON")
	lockPath := fs.String("lockfile", "", "keep the images the lockfile `FILE` pins (default ./"+lockfile.Name+", when there is one)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 0, "no arguments"); err != nil {
		return err
	}
	cache, err := c.imageCache()
	if err != nil {
		return err
	}
	pins, err := c.imagePins(*lockPath)
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
	if *jsonOut {
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
// trust store's entries and those of the lockfile at lockPath (given by
// --lockfile: it must exist), else of ./skills.lock when there is one. A
// store or lockfile that cannot be read stops the prune: removing what
// they may pin is not the safe way to fail.
func (c *cmdContext) imagePins(lockPath string) (map[string]string, error) {
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
	path, given := lockPath, lockPath != ""
	if !given {
		path = lockfile.Name
	}
	l, err := lockfile.Load(path)
	switch {
	case err == nil:
		for _, id := range slices.Sorted(maps.Keys(l.Skills)) {
			if e := l.Skills[id]; e.Image != nil && pins[e.Image.Digest] == "" {
				pins[e.Image.Digest] = path + " (" + id + ")"
			}
		}
	case given || errdefs.KindOf(err) != errdefs.NotFound:
		return nil, err
	}
	return pins, nil
}
