package image

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/skill"
)

// source is an opened image and what it pins to.
type source struct {
	img    v1.Image
	pinned Pinned
	// manifest is false for a docker archive, whose manifest
	// go-containerregistry would have to make (compressing every layer).
	manifest bool
	close    func()
}

// open reads ref and picks the image for this platform.
func (c *Cache) open(ctx context.Context, ref Ref) (*source, error) {
	s := &source{pinned: Pinned{Ref: ref}, manifest: true, close: func() {}}
	var err error
	switch ref.Transport {
	case Registry:
		err = c.openRemote(ctx, s)
	case OCILayout:
		err = openLayout(s, ref.Name)
	case OCIArchive:
		err = c.openOCIArchive(ctx, s)
	case DockerArchive:
		err = openDockerArchive(s)
	default:
		err = errdefs.New(errdefs.Invalid, "image %s: unknown transport %q", ref, ref.Transport)
	}
	if err == nil {
		err = s.check()
	}
	if err != nil {
		s.close()
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	return s, nil
}

// remoteOptions are the options of requests for an image in registry (a
// host, with or without a port).
func (c *Cache) remoteOptions(ctx context.Context, registry string) []remote.Option {
	kc := c.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	var t http.RoundTripper = remote.DefaultTransport
	if c.Transport != nil {
		t = c.Transport
	}
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(kc),
		remote.WithTransport(httpGuard{next: t, registry: registry}),
		remote.WithUserAgent("skillbox"),
	}
}

func (c *Cache) openRemote(ctx context.Context, s *source) error {
	r, err := name.ParseReference(s.pinned.Ref.Name)
	if err != nil {
		return errdefs.Wrap(errdefs.Invalid, err, "reference")
	}
	desc, err := remote.Get(r, c.remoteOptions(ctx, r.Context().RegistryStr())...)
	if err != nil {
		return remoteErr(err)
	}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return remoteErr(err)
		}
		s.pinned.Index = Digest(desc.Digest.String())
		img, inner, err := pick(idx, 0)
		if err != nil {
			return err
		}
		if inner != "" {
			s.pinned.Index = inner
		}
		s.img = img
		return nil
	}
	s.img, err = desc.Image()
	if err != nil {
		return remoteErr(err)
	}
	return nil
}

// remoteErr gives a registry failure its kind.
func remoteErr(err error) error {
	var e *errdefs.Error
	if errors.As(err, &e) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusNotFound:
			return errdefs.Wrap(errdefs.NotFound, err, "registry")
		case http.StatusUnauthorized, http.StatusForbidden:
			return errdefs.Wrap(errdefs.Denied, err, "registry (credentials come from the docker config and its credential helpers)")
		}
	}
	return errdefs.Wrap(errdefs.Unavailable, err, "registry")
}

func openLayout(s *source, dir string) error {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return errdefs.Wrap(errdefs.NotFound, err, "OCI layout")
		}
		return errdefs.Wrap(errdefs.Invalid, err, "OCI layout")
	}
	// index.json itself is not content the image is named by; a nested
	// index (a multi-platform image in the layout) is.
	img, inner, err := pick(idx, 0)
	if err != nil {
		return err
	}
	s.img, s.pinned.Index = img, inner
	return nil
}

func (c *Cache) openOCIArchive(ctx context.Context, s *source) error {
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return errdefs.Wrap(errdefs.Unavailable, err, "image cache")
	}
	tmp, err := os.MkdirTemp(c.Dir, ".archive-")
	if err != nil {
		return errdefs.Wrap(errdefs.Unavailable, err, "image cache")
	}
	s.close = func() { os.RemoveAll(tmp) }
	if err := extractLayout(ctx, s.pinned.Ref.Name, tmp, c.Limits.withDefaults()); err != nil {
		return err
	}
	return openLayout(s, tmp)
}

// extractLayout copies an OCI archive (a tar of an image layout) into dir:
// folders and regular files only, names inside dir, within the limits.
func extractLayout(ctx context.Context, file, dir string, lim Limits) error {
	f, err := os.Open(file)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return errdefs.Wrap(errdefs.NotFound, err, "OCI archive")
		}
		return errdefs.Wrap(errdefs.Invalid, err, "OCI archive")
	}
	defer f.Close()
	root, err := os.OpenRoot(dir)
	if err != nil {
		return errdefs.Wrap(errdefs.Internal, err, "OCI archive")
	}
	defer root.Close()
	tr := tar.NewReader(f)
	var files, size int64
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return errdefs.Wrap(errdefs.Invalid, err, "OCI archive")
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if files++; files > lim.MaxFiles {
			return errdefs.New(errdefs.Limit, "OCI archive has more than %d entries (image.Limits.MaxFiles)", lim.MaxFiles)
		}
		p, err := clean(hdr.Name)
		if err != nil {
			return fmt.Errorf("OCI archive: %w", err)
		}
		if p == "" {
			continue
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(p, 0o700); err != nil {
				return errdefs.Wrap(errdefs.Invalid, err, "OCI archive")
			}
		case tar.TypeReg, tar.TypeRegA:
			if hdr.Size < 0 || hdr.Size > lim.MaxBytes-size {
				return errdefs.New(errdefs.Limit, "OCI archive is larger than the cap of %d bytes (image.Limits.MaxBytes)", lim.MaxBytes)
			}
			size += hdr.Size
			if d := strings.TrimSuffix(p[:strings.LastIndex(p, "/")+1], "/"); d != "" {
				if err := root.MkdirAll(d, 0o700); err != nil {
					return errdefs.Wrap(errdefs.Invalid, err, "OCI archive")
				}
			}
			w, err := root.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return errdefs.Wrap(errdefs.Invalid, err, "OCI archive")
			}
			_, err = io.Copy(w, io.LimitReader(tr, hdr.Size))
			if cerr := w.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return errdefs.Wrap(errdefs.Invalid, err, "OCI archive")
			}
		default:
			return errdefs.New(errdefs.Invalid, "OCI archive: entry %q is not a file or folder", hdr.Name)
		}
	}
}

func openDockerArchive(s *source) error {
	if _, err := os.Stat(s.pinned.Ref.Name); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return errdefs.Wrap(errdefs.NotFound, err, "docker archive")
		}
		return errdefs.Wrap(errdefs.Invalid, err, "docker archive")
	}
	img, err := tarball.ImageFromPath(s.pinned.Ref.Name, nil)
	if err != nil {
		return errdefs.Wrap(errdefs.Invalid, err, "docker archive (one image, as `docker save` writes it)")
	}
	s.img, s.manifest = img, false
	return nil
}

// pick chooses the image for this platform from an index, following
// nested indexes; inner is the digest of the innermost index it went
// through below idx, if any.
func pick(idx v1.ImageIndex, depth int) (img v1.Image, inner Digest, err error) {
	if depth > 4 {
		return nil, "", errdefs.New(errdefs.Invalid, "indexes nested more than 4 deep")
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, "", errdefs.Wrap(errdefs.Invalid, err, "index")
	}
	var match, unlabelled []v1.Descriptor
	var seen []string
	for _, d := range im.Manifests {
		if !d.MediaType.IsImage() && !d.MediaType.IsIndex() {
			continue
		}
		if d.Platform == nil {
			unlabelled = append(unlabelled, d)
			continue
		}
		seen = append(seen, d.Platform.String())
		if platformFits(*d.Platform) {
			match = append(match, d)
		}
	}
	cands := match
	if len(cands) == 0 {
		cands = unlabelled
	}
	if len(cands) == 0 {
		return nil, "", errdefs.New(errdefs.Unsupported, "no %s image in the index (it has: %s)", HostPlatform(), platformList(seen))
	}
	if len(match) == 0 && len(cands) > 1 {
		return nil, "", errdefs.New(errdefs.Invalid, "the index lists %d images without platforms; name one (by digest) or give it one image", len(cands))
	}
	d := cands[0]
	if d.MediaType.IsIndex() {
		sub, err := idx.ImageIndex(d.Digest)
		if err != nil {
			return nil, "", errdefs.Wrap(errdefs.Invalid, err, "index")
		}
		img, in, err := pick(sub, depth+1)
		if in == "" {
			in = Digest(d.Digest.String())
		}
		return img, in, err
	}
	img, err = idx.Image(d.Digest)
	if err != nil {
		return nil, "", errdefs.Wrap(errdefs.Invalid, err, "index")
	}
	return img, "", nil
}

// platformList names the platforms an index has, each once, at most 16
// (an index may list thousands).
func platformList(seen []string) string {
	slices.Sort(seen)
	seen = slices.Compact(seen)
	if len(seen) > 16 {
		return strings.Join(seen[:16], ", ") + fmt.Sprintf(" and %d more", len(seen)-16)
	}
	return strings.Join(seen, ", ")
}

// platformFits: linux, this architecture, and for arm64 the v8 variant
// (or none).
func platformFits(p v1.Platform) bool {
	if p.OS != "linux" || p.Architecture != runtime.GOARCH {
		return false
	}
	return runtime.GOARCH != "arm64" || p.Variant == "" || p.Variant == "v8"
}

// MaxConfigSize bounds an image's config blob (JSON of a few KiB in
// practice; long histories make tens).
const MaxConfigSize = 8 << 20

// check verifies the image is what its digests say and runs here, and
// fills in the pinned digest and platform. A layout's or archive's blobs
// are read from files named by digest, which nothing verified: the
// manifest and config are hashed here, the layers against the config's
// diff ids when unpacked.
func (s *source) check() error {
	var m *v1.Manifest
	if s.manifest {
		raw, err := s.img.RawManifest()
		if err != nil {
			return errdefs.Wrap(errdefs.Invalid, err, "manifest")
		}
		d, err := s.img.Digest()
		if err != nil {
			return errdefs.Wrap(errdefs.Invalid, err, "manifest")
		}
		if sum := sha256Hex(raw); d.Algorithm != "sha256" || d.Hex != sum {
			return errdefs.New(errdefs.Invalid, "manifest does not match its digest %s", d)
		}
		if m, err = s.img.Manifest(); err != nil {
			return errdefs.Wrap(errdefs.Invalid, err, "manifest")
		}
		// The config is read whole into memory, as long as the manifest
		// says it is (a registry's body is cut there, but not when the
		// size is missing or negative): a hostile registry's endless
		// config took the host's memory.
		if m.Config.Size <= 0 || m.Config.Size > MaxConfigSize {
			return errdefs.New(errdefs.Limit, "image config is declared as %d bytes; skillbox reads configs of 1 byte to %s", m.Config.Size, skill.FormatSize(MaxConfigSize))
		}
		// A layer that names URLs (a "foreign", non-distributable layer:
		// Windows base layers) is fetched from them when the registry has
		// no blob: the manifest's author would pick the host and path
		// skillbox fetches. Layers come from the image's registry only.
		for i, l := range m.Layers {
			if len(l.URLs) > 0 {
				return errdefs.New(errdefs.Invalid, "layer %d of %d names URLs to fetch it from (%.200q): skillbox fetches an image's layers from its registry only", i+1, len(m.Layers), l.URLs[0])
			}
		}
		s.pinned.Digest = Digest(d.String())
	}
	cfgRaw, err := s.img.RawConfigFile()
	if err != nil {
		return errdefs.Wrap(errdefs.Invalid, err, "config")
	}
	if m != nil {
		if int64(len(cfgRaw)) != m.Config.Size || m.Config.Digest.Algorithm != "sha256" || m.Config.Digest.Hex != sha256Hex(cfgRaw) {
			return errdefs.New(errdefs.Invalid, "config does not match its digest %s", m.Config.Digest)
		}
	} else {
		s.pinned.Digest = Digest("sha256:" + sha256Hex(cfgRaw))
	}
	cf, err := s.img.ConfigFile()
	if err != nil {
		return errdefs.Wrap(errdefs.Invalid, err, "config")
	}
	if (cf.OS != "" && cf.OS != "linux") || (cf.Architecture != "" && cf.Architecture != runtime.GOARCH) {
		return errdefs.New(errdefs.Unsupported, "image is for %s/%s, not %s", cf.OS, cf.Architecture, HostPlatform())
	}
	s.pinned.Platform = HostPlatform()
	if cf.Variant != "" {
		s.pinned.Platform += "/" + cf.Variant
	}
	return nil
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// declaredSize is the sum of the layers' sizes the manifest declares, or -1
// without a manifest.
func (s *source) declaredSize() int64 {
	if !s.manifest {
		return -1
	}
	m, err := s.img.Manifest()
	if err != nil {
		return -1
	}
	var n int64
	for _, l := range m.Layers {
		if l.Size < 0 || n+l.Size < n {
			return 1<<63 - 1
		}
		n += l.Size
	}
	return n
}
