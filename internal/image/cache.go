package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/filelock"
	"github.com/skillbox-dev/skillbox/skill"
)

// metaFile is the record of an unpacked image, beside its rootfs.
const metaFile = "image.json"

// Config is what skillbox reads from an image's config. It is recorded,
// not obeyed: what a jail honours is the policy's decision.
type Config struct {
	Entrypoint []string `json:"entrypoint,omitempty"`
	Cmd        []string `json:"cmd,omitempty"`
	Env        []string `json:"env,omitempty"`
	WorkingDir string   `json:"working_dir,omitempty"`
	User       string   `json:"user,omitempty"`
}

// Image is an unpacked image in the cache.
type Image struct {
	Pinned
	Config Config `json:"config"`
	// Size is the bytes of file content in the root file system and
	// Stats what unpacking wrote and skipped.
	Size  int64 `json:"size"`
	Stats Stats `json:"stats"`
	// Created is the image's creation time as its config says (zero if it
	// says none); Unpacked when skillbox unpacked it.
	Created  time.Time `json:"created,omitzero"`
	Unpacked time.Time `json:"unpacked"`
	// Dir is the image's folder in the cache, Rootfs its root file system
	// (Dir/rootfs).
	Dir    string `json:"dir"`
	Rootfs string `json:"rootfs"`
}

// Cache is the folder of unpacked images (the cache folder's "images"):
// one folder per image digest (its first 32 hex digits) holding rootfs/ and
// image.json, unpacked once and then only read; beside each, NAME.lock
// (unpacking and pruning of that image exclude each other) and NAME.use
// (held shared by every jail running on the image; see Use).
type Cache struct {
	// Dir is the cache's folder, absolute (records name it).
	Dir string
	// Limits bound each unpack; zero fields take the defaults.
	Limits Limits
	// Progress, when not nil, gets a line per step of a pull (stderr in
	// the CLI).
	Progress io.Writer
	// Keychain gives registry credentials; nil is authn.DefaultKeychain
	// (the docker config and its credential helpers). Credentials stay in
	// this process: nothing of them reaches a jail.
	Keychain authn.Keychain
	// Transport carries registry requests; nil is go-containerregistry's
	// default. Either way, plain HTTP is refused unless the host is
	// loopback (PlainHTTPAllowed).
	Transport http.RoundTripper
	// ResolveTimeout bounds Resolve of a registry reference (its
	// manifests and config, a few MiB at most); zero is
	// DefaultResolveTimeout.
	ResolveTimeout time.Duration
}

// DefaultResolveTimeout is how long resolving a registry reference may
// take: a registry that never answers, or answers a byte at a time, would
// otherwise hold `skillbox trust`, `skillbox lock` or a sandbox's open
// forever.
const DefaultResolveTimeout = 2 * time.Minute

func dirName(d Digest) string { return d.Hex()[:32] }

func (c *Cache) path(d Digest) string { return filepath.Join(c.Dir, dirName(d)) }

func (c *Cache) progress(format string, args ...any) {
	if c.Progress != nil {
		fmt.Fprintf(c.Progress, "image: "+format+"\n", args...)
	}
}

// Resolve pins ref: it reads the reference (a registry's manifest, not its
// layers; an archive or layout on disk), picks the image for this platform
// and returns its digest. Nothing is unpacked.
func (c *Cache) Resolve(ctx context.Context, ref Ref) (Pinned, error) {
	parent, bound := ctx, c.ResolveTimeout
	if bound <= 0 {
		bound = DefaultResolveTimeout
	}
	if ref.Transport == Registry {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, bound)
		defer cancel()
	}
	s, err := c.open(ctx, ref)
	if err != nil {
		if ref.Transport == Registry && parent.Err() == nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return Pinned{}, errdefs.Wrap(errdefs.Timeout, err, fmt.Sprintf("image %s: the registry did not answer within %s (image.Cache.ResolveTimeout)", ref, bound))
		}
		return Pinned{}, err
	}
	defer s.close()
	return s.pinned, nil
}

// Pull resolves ref and makes sure the image it names now is unpacked.
func (c *Cache) Pull(ctx context.Context, ref Ref) (*Image, error) {
	c.progress("resolving %s", ref)
	s, err := c.open(ctx, ref)
	if err != nil {
		return nil, err
	}
	defer s.close()
	c.progress("%s is %s", ref, s.pinned.Digest)
	return c.ensure(ctx, s)
}

// Ensure makes sure the pinned image is unpacked and returns it. It never
// unpacks anything else: a registry is asked for the digest itself; an
// archive or layout that now holds another image is denied.
func (c *Cache) Ensure(ctx context.Context, p Pinned) (*Image, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if img, err := c.Lookup(p.Digest); img != nil || err != nil {
		return img, err
	}
	ref := p.Ref
	if ref.Transport == Registry {
		r, err := name.ParseReference(ref.Name)
		if err != nil {
			return nil, errdefs.Wrap(errdefs.Invalid, err, "image "+ref.Name)
		}
		ref.Name = r.Context().Digest(string(p.Digest)).Name()
	}
	s, err := c.open(ctx, ref)
	if err != nil {
		return nil, err
	}
	defer s.close()
	if s.pinned.Digest != p.Digest {
		return nil, errdefs.New(errdefs.Denied, "image %s now holds %s, not the pinned %s", p.Ref, s.pinned.Digest, p.Digest)
	}
	s.pinned.Ref, s.pinned.Index = p.Ref, p.Index
	return c.ensure(ctx, s)
}

// ensure unpacks s unless it is unpacked, under the image's lock.
func (c *Cache) ensure(ctx context.Context, s *source) (*Image, error) {
	d := s.pinned.Digest
	if img, err := c.Lookup(d); img != nil || err != nil {
		return img, err
	}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return nil, errdefs.Wrap(errdefs.Unavailable, err, "image cache")
	}
	unlock, err := filelock.Lock(c.path(d)+".lock", "image")
	if err != nil {
		return nil, err
	}
	defer unlock()
	if img, err := c.Lookup(d); img != nil || err != nil {
		return img, err
	}
	c.removeLeftovers(d)
	lim := c.Limits.withDefaults()
	if n := s.declaredSize(); n > lim.MaxBytes {
		return nil, errdefs.New(errdefs.Limit, "image %s: its layers declare %s, over the unpack cap of %s (image.Limits.MaxBytes)", s.pinned.Ref, skill.FormatSize(n), skill.FormatSize(lim.MaxBytes))
	}
	if n := s.declaredSize(); n >= 0 {
		c.progress("pulling %s (%s): layers of %s", s.pinned.Ref, d.Short(), skill.FormatSize(n))
	} else {
		c.progress("unpacking %s (%s)", s.pinned.Ref, d.Short())
	}
	stage, err := os.MkdirTemp(c.Dir, ".unpack-"+dirName(d)+"-")
	if err != nil {
		return nil, errdefs.Wrap(errdefs.Unavailable, err, "image cache")
	}
	defer os.RemoveAll(stage)
	rootfs := filepath.Join(stage, "rootfs")
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		return nil, errdefs.Wrap(errdefs.Unavailable, err, "image cache")
	}
	st, err := Unpack(ctx, s.img, rootfs, lim, c.Progress)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", s.pinned.Ref, err)
	}
	cf, err := s.img.ConfigFile()
	if err != nil {
		return nil, errdefs.Wrap(errdefs.Invalid, err, "image config")
	}
	dir := c.path(d)
	img := &Image{
		Pinned: s.pinned,
		Config: Config{
			Entrypoint: cf.Config.Entrypoint, Cmd: cf.Config.Cmd, Env: cf.Config.Env,
			WorkingDir: cf.Config.WorkingDir, User: cf.Config.User,
		},
		Size: st.Bytes, Stats: st, Created: cf.Created.UTC(), Unpacked: time.Now().UTC(),
		Dir: dir, Rootfs: filepath.Join(dir, "rootfs"),
	}
	meta, _ := json.MarshalIndent(img, "", "  ")
	if err := os.WriteFile(filepath.Join(stage, metaFile), append(meta, '\n'), 0o644); err != nil {
		return nil, errdefs.Wrap(errdefs.Unavailable, err, "image cache")
	}
	if err := os.Chmod(stage, 0o755); err != nil {
		return nil, errdefs.Wrap(errdefs.Unavailable, err, "image cache")
	}
	if err := os.Rename(stage, dir); err != nil {
		return nil, errdefs.Wrap(errdefs.Unavailable, err, "image cache")
	}
	c.progress("unpacked %s: %d entries, %s (%d device nodes, %d fifos skipped; %d set-id bits and %d extended attribute sets dropped)",
		d.Short(), st.Files, skill.FormatSize(st.Bytes), st.Devices, st.Fifos, st.SetID, st.Xattrs)
	return img, nil
}

// removeLeftovers removes interrupted unpacks and prunes of d (the
// caller holds d's lock) and a folder without a valid record.
func (c *Cache) removeLeftovers(d Digest) {
	for _, pre := range []string{".unpack-", ".prune-"} {
		if m, _ := filepath.Glob(filepath.Join(c.Dir, pre+dirName(d)+"-*")); m != nil {
			for _, p := range m {
				os.RemoveAll(p)
			}
		}
	}
	os.RemoveAll(c.path(d))
}

// Lookup returns the unpacked image with digest d, or nil when there is
// none.
func (c *Cache) Lookup(d Digest) (*Image, error) {
	if _, err := ParseDigest(string(d)); err != nil {
		return nil, err
	}
	return c.read(dirName(d), d)
}

// read returns the image recorded in folder name (with digest want, if
// given), nil if there is none or the record is not this cache's.
func (c *Cache) read(name string, want Digest) (*Image, error) {
	dir := filepath.Join(c.Dir, name)
	data, err := os.ReadFile(filepath.Join(dir, metaFile))
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrInvalid) {
		return nil, nil
	}
	if err != nil {
		return nil, errdefs.Wrap(errdefs.Unavailable, err, "image cache")
	}
	var img Image
	if json.Unmarshal(data, &img) != nil || img.Dir != dir || img.Rootfs != filepath.Join(dir, "rootfs") ||
		(want != "" && img.Digest != want) || img.Pinned.Validate() != nil || dirName(img.Digest) != name {
		return nil, nil // a leftover of another layout or place: unpacked again
	}
	return &img, nil
}

// List returns the unpacked images, sorted by digest.
func (c *Cache) List() ([]*Image, error) {
	ents, err := os.ReadDir(c.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, errdefs.Wrap(errdefs.Unavailable, err, "image cache")
	}
	var imgs []*Image
	for _, d := range ents {
		if !d.IsDir() || strings.HasPrefix(d.Name(), ".") {
			continue
		}
		img, err := c.read(d.Name(), "")
		if err != nil {
			return nil, err
		}
		if img != nil {
			imgs = append(imgs, img)
		}
	}
	slices.SortFunc(imgs, func(a, b *Image) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
	return imgs, nil
}

// Use marks the image with digest d as in use until release is called:
// a shared lock on its .use file, which Prune will not remove it under.
// A jail running on the image holds it for its whole life (every holder
// shares it). Use waits while a prune of d is under way, and is NotFound
// when the image is not (or no longer) unpacked: Ensure it again.
func (c *Cache) Use(d Digest) (*Image, func(), error) {
	if _, err := ParseDigest(string(d)); err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return nil, nil, errdefs.Wrap(errdefs.Unavailable, err, "image cache")
	}
	release, err := filelock.Shared(c.path(d)+".use", "image in use")
	if err != nil {
		return nil, nil, err
	}
	img, err := c.Lookup(d)
	if err == nil && img == nil {
		err = errdefs.New(errdefs.NotFound, "image %s is not unpacked", d)
	}
	if err != nil {
		release()
		return nil, nil, err
	}
	return img, release, nil
}

// PruneResult is what Prune removed and what it kept because it is in use.
type PruneResult struct {
	Removed []*Image `json:"removed"`
	InUse   []*Image `json:"in_use"`
}

// Prune removes every unpacked image for which keep is false (nil: all)
// and no jail holds in use (a built image's archive with it), and the
// leftovers of interrupted unpacks and builds. An
// image is first renamed out of place, so a reader sees it whole or not
// at all. Lock files stay (a lock file removed while another process waits
// on it would let two holders of "one" lock run at once).
func (c *Cache) Prune(keep func(*Image) bool) (PruneResult, error) {
	res := PruneResult{Removed: []*Image{}, InUse: []*Image{}}
	imgs, err := c.List()
	if err != nil {
		return res, err
	}
	for _, img := range imgs {
		if keep != nil && keep(img) {
			continue
		}
		removed, err := c.remove(img)
		if err != nil {
			return res, err
		}
		if removed {
			if a, ok := c.builtArchive(img); ok {
				os.Remove(a)
			}
			res.Removed = append(res.Removed, img)
		} else {
			res.InUse = append(res.InUse, img)
		}
	}
	c.pruneBuilds()
	// Interrupted unpacks whose lock is free, and archives extracted by
	// a process that died (an extraction takes minutes, not a day).
	ents, _ := os.ReadDir(c.Dir)
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, ".archive-") {
			if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > 24*time.Hour {
				os.RemoveAll(filepath.Join(c.Dir, n))
			}
			continue
		}
		for _, pre := range []string{".unpack-", ".prune-"} {
			rest, ok := strings.CutPrefix(n, pre)
			if !ok || len(rest) < 33 {
				continue
			}
			unlock, ok, err := filelock.TryLock(filepath.Join(c.Dir, rest[:32]+".lock"), "image")
			if err != nil || !ok {
				continue
			}
			os.RemoveAll(filepath.Join(c.Dir, n))
			unlock()
		}
	}
	return res, nil
}

// remove deletes img unless it is in use; false means it is.
func (c *Cache) remove(img *Image) (bool, error) {
	unlock, err := filelock.Lock(c.path(img.Digest)+".lock", "image")
	if err != nil {
		return false, err
	}
	defer unlock()
	free, ok, err := filelock.TryLock(c.path(img.Digest)+".use", "image in use")
	if err != nil {
		return false, err
	}
	if !ok {
		return false, nil
	}
	defer free()
	trash, err := os.MkdirTemp(c.Dir, ".prune-"+dirName(img.Digest)+"-")
	if err != nil {
		return false, errdefs.Wrap(errdefs.Unavailable, err, "image cache")
	}
	if err := os.Rename(img.Dir, filepath.Join(trash, "image")); err != nil {
		os.Remove(trash)
		return false, errdefs.Wrap(errdefs.Unavailable, err, "remove image "+img.Digest.Short())
	}
	if err := os.RemoveAll(trash); err != nil {
		return true, errdefs.Wrap(errdefs.Unavailable, err, "remove image "+img.Digest.Short())
	}
	return true, nil
}
