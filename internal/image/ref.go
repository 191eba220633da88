package image

import (
	"encoding/hex"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/skillbox-dev/skillbox/errdefs"
)

// Transport says where an image comes from.
type Transport string

// The transports. Their names are the prefixes a reference is written with
// (a registry reference has none).
const (
	// Registry: a registry reference (registry.example/repo:tag or
	// repo@sha256:...), pulled over HTTPS (plain HTTP only on loopback).
	Registry Transport = "registry"
	// OCIArchive: a tar file of an OCI image layout ("oci-archive:PATH").
	OCIArchive Transport = "oci-archive"
	// DockerArchive: a `docker save` tar file holding one image
	// ("docker-archive:PATH").
	DockerArchive Transport = "docker-archive"
	// OCILayout: an OCI image layout folder ("oci:DIR").
	OCILayout Transport = "oci"
)

// Ref names an image as a skill or an operator wrote it, before it is
// pinned. The zero Ref is not valid.
type Ref struct {
	Transport Transport
	// Name is the registry reference, fully qualified
	// (index.docker.io/library/python:3.12), or the absolute path of the
	// archive or layout.
	Name string
}

// ParseRef reads an image reference: "oci-archive:PATH",
// "docker-archive:PATH", "oci:DIR", or else a registry reference (Docker's
// defaults apply: docker.io, library/, :latest). A relative PATH is resolved
// against base (the skill's bundle folder) and must stay inside it; with an
// empty base, a relative path is invalid. An absolute PATH is taken as
// written: whether a skill may name one is its caller's decision (Ref.Local
// tells the two kinds apart).
func ParseRef(s, base string) (Ref, error) {
	if s == "" {
		return Ref{}, errdefs.New(errdefs.Invalid, "image reference is empty")
	}
	for _, t := range []Transport{OCIArchive, DockerArchive, OCILayout} {
		p, ok := strings.CutPrefix(s, string(t)+":")
		if !ok {
			continue
		}
		if p == "" {
			return Ref{}, errdefs.New(errdefs.Invalid, "image %q: want %s:PATH", s, t)
		}
		if strings.ContainsRune(p, 0) {
			return Ref{}, errdefs.New(errdefs.Invalid, "image %q: the path holds a NUL byte", s)
		}
		if filepath.IsAbs(p) {
			return Ref{Transport: t, Name: filepath.Clean(p)}, nil
		}
		if base == "" || !filepath.IsAbs(base) {
			return Ref{}, errdefs.New(errdefs.Invalid, "image %q: a relative path needs the folder it is relative to (the skill's bundle)", s)
		}
		rel := filepath.Clean(p)
		if rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return Ref{}, errdefs.New(errdefs.Invalid, "image %q: a relative path must stay inside %s", s, base)
		}
		return Ref{Transport: t, Name: filepath.Join(base, rel)}, nil
	}
	r, err := name.ParseReference(s)
	if err != nil {
		return Ref{}, errdefs.New(errdefs.Invalid, "image %q: not a registry reference, oci-archive:PATH, docker-archive:PATH or oci:DIR: %v", s, err)
	}
	return Ref{Transport: Registry, Name: r.Name()}, nil
}

// String is the reference as ParseRef reads it back (with an absolute
// path).
func (r Ref) String() string {
	if r.Transport == Registry || r.Transport == "" {
		return r.Name
	}
	return string(r.Transport) + ":" + r.Name
}

// Local reports whether r names a file or folder on this host rather than a
// registry.
func (r Ref) Local() bool { return r.Transport != Registry }

// MarshalText writes String, so a Ref is a JSON string.
func (r Ref) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText reads what MarshalText wrote (paths must be absolute).
func (r *Ref) UnmarshalText(b []byte) error {
	v, err := ParseRef(string(b), "")
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// Digest is a content digest, "sha256:" and 64 lowercase hex digits.
type Digest string

// ParseDigest checks s is a sha256 digest.
func ParseDigest(s string) (Digest, error) {
	h, ok := strings.CutPrefix(s, "sha256:")
	if !ok || len(h) != 64 || strings.ToLower(h) != h {
		return "", errdefs.New(errdefs.Invalid, "digest %q: want sha256: and 64 lowercase hex digits", s)
	}
	if _, err := hex.DecodeString(h); err != nil {
		return "", errdefs.New(errdefs.Invalid, "digest %q: want sha256: and 64 lowercase hex digits", s)
	}
	return Digest(s), nil
}

// Hex is the digest's hex digits.
func (d Digest) Hex() string { return strings.TrimPrefix(string(d), "sha256:") }

// Short is the first 12 hex digits, for messages.
func (d Digest) Short() string {
	if h := d.Hex(); len(h) >= 12 {
		return h[:12]
	}
	return string(d)
}

// Pinned is an image reference resolved to the content it names now: what
// the trust store and the lockfile record beside a bundle's digest, and what
// Cache.Ensure unpacks (never anything else). A tag that moves later gives
// another Pinned.
type Pinned struct {
	// Ref is the reference as written (after ParseRef).
	Ref Ref `json:"ref"`
	// Digest identifies the image: its manifest's digest for a registry,
	// an OCI archive or layout; for a docker archive, which holds no
	// manifest of its own, its config's digest (the image id `docker
	// load` reports). Layers are checked against the config's diff ids
	// when unpacked, so either digest covers every byte of the root file
	// system.
	Digest Digest `json:"digest"`
	// Index is the digest of the index (manifest list) the image was
	// picked from for Platform; empty when Ref names an image directly.
	Index Digest `json:"index,omitempty"`
	// Platform is the image's os/architecture[/variant].
	Platform string `json:"platform"`
}

// String is the pinned image as one line: for a registry,
// REPOSITORY@DIGEST (pullable as is); otherwise REF@DIGEST.
func (p Pinned) String() string {
	if p.Ref.Transport == Registry {
		if r, err := name.ParseReference(p.Ref.Name); err == nil {
			return r.Context().Name() + "@" + string(p.Digest)
		}
	}
	return p.Ref.String() + "@" + string(p.Digest)
}

// Validate checks p's fields are well formed.
func (p Pinned) Validate() error {
	if p.Ref.Name == "" {
		return errdefs.New(errdefs.Invalid, "pinned image: no reference")
	}
	if _, err := ParseDigest(string(p.Digest)); err != nil {
		return fmt.Errorf("pinned image %s: %w", p.Ref, err)
	}
	if p.Index != "" {
		if _, err := ParseDigest(string(p.Index)); err != nil {
			return fmt.Errorf("pinned image %s: index %w", p.Ref, err)
		}
	}
	return nil
}

// HostPlatform is the platform images are picked for: linux and this
// program's architecture.
func HostPlatform() string { return "linux/" + runtime.GOARCH }
