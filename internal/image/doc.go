// Package image pulls OCI images without a daemon and unpacks them, safely,
// into a content-addressed cache of root file systems: the part of the
// container tier (docs/CONTAINERS.md) that runs nothing.
//
// Sources (ParseRef): a registry reference, "oci-archive:PATH",
// "docker-archive:PATH" and "oci:DIR", a relative PATH being relative to
// the skill's bundle. Cache.Resolve pins a reference to the digest of the
// image it names now (for this platform, linux/GOARCH, when it names an
// index); Cache.Ensure unpacks exactly that pinned image, and Cache.Pull
// does both. Registries are reached with go-containerregistry, credentials
// from the docker config and its credential helpers (authn.DefaultKeychain),
// over HTTPS; plain HTTP only to loopback (PlainHTTPAllowed).
//
// Unpacking (Unpack) applies the layers in order into a fresh folder and
// follows these rules:
//   - every name stays inside the root: ".." in a name is refused, a
//     leading "/" dropped, and symbolic links met on the way to an entry
//     are resolved as if the root were "/" (filepath-securejoin), never
//     followed out of it; every write goes through an os.Root, which
//     refuses anything that would leave it;
//   - whiteouts (".wh.NAME") remove what lower layers put there, opaque
//     markers (".wh..wh..opq") empty a folder of lower layers' entries;
//   - hard links only to entries already in the root;
//   - no device nodes, named pipes or other special files (skipped and
//     counted); no set-user-id, set-group-id or sticky bits, no write
//     permission for group or others; extended attributes are never
//     written, so no file capabilities (security.capability);
//   - ownership is the unpacking user's, never the image's ids;
//   - each layer's content must hash to its diff id in the config, and
//     the manifest and config to their digests;
//   - Limits cap the bytes and entries; a layer whose declared sizes
//     exceed them is refused before it is read.
//
// The cache (Cache): DIR/NAME/rootfs and DIR/NAME/image.json (and
// DIR/NAME/python.json, what its interpreters said of themselves when a
// backend ran them jailed: Image.PythonRecord), NAME being
// the first 32 hex digits of the image digest. An image is unpacked into a
// temporary folder and renamed into place, under a lock per digest, so
// concurrent pulls of one image unpack it once. A jail running on an image
// holds a shared lock on DIR/NAME.use (Cache.Use); Cache.Prune removes only
// images whose .use lock it can take exclusively.
//
// Skills' images: Cache.BuildSkill builds a skill's Dockerfile from its
// sealed bundle and records the image for that bundle digest (BuiltFor
// finds it; EnsureBuilt builds only when none is, for a call on first use),
// one build per digest at a time. Cache.PinFirst records, per bundle
// digest, the image a registry tag resolved to the first time a skill that
// nothing else pins ran (DIR/.pins), so that a moved tag is noticed;
// Cache.Repin moves those pins (`skillbox image pull REF`).
package image
