package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/zstd"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/skill"
)

// Limits bound what unpacking an image may write. Zero fields take the
// defaults.
type Limits struct {
	// MaxBytes caps the bytes of file content in the root file system, over
	// all layers (a file replaced by a later layer counts twice); the tar
	// streams themselves may add at most 4 KiB per entry on top. Default
	// DefaultMaxBytes.
	MaxBytes int64
	// MaxFiles caps the tar entries read, over all layers (whiteouts,
	// links and skipped entries count). Default DefaultMaxFiles.
	MaxFiles int64
}

// The default limits: generous for a Python image (python:3.12 is about
// 1 GiB and 30,000 files), small enough that a tar bomb fails long before
// the disk fills.
const (
	DefaultMaxBytes = 4 << 30
	DefaultMaxFiles = 200_000
)

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxFiles <= 0 {
		l.MaxFiles = DefaultMaxFiles
	}
	return l
}

// headerAllowance is what each tar entry may add to a layer's stream beyond
// its content (a header, PAX records, padding) before the stream is over
// its cap.
const headerAllowance = 4 << 10

// Stats says what unpacking wrote and what it refused to.
type Stats struct {
	// Files is the entries written (folders, files, links); Bytes the
	// content written.
	Files int64 `json:"files"`
	Bytes int64 `json:"bytes"`
	// Devices and Fifos are the device nodes and named pipes skipped;
	// Other the entries of other types skipped.
	Devices int64 `json:"devices,omitempty"`
	Fifos   int64 `json:"fifos,omitempty"`
	Other   int64 `json:"other,omitempty"`
	// SetID is the entries whose set-user-id, set-group-id or sticky bit
	// was dropped; Xattrs those whose extended attributes (file
	// capabilities among them) were not written.
	SetID  int64 `json:"setid,omitempty"`
	Xattrs int64 `json:"xattrs,omitempty"`
}

// Unpack writes img's root file system into dir, an empty folder this
// process owns and no one else writes to, applying its layers in order
// (see the package documentation for the rules). progress, when not nil,
// gets a line per layer. On error dir holds a partial tree: unpack into a
// temporary folder and rename it (Cache does).
func Unpack(ctx context.Context, img v1.Image, dir string, lim Limits, progress io.Writer) (Stats, error) {
	lim = lim.withDefaults()
	cf, err := img.ConfigFile()
	if err != nil {
		return Stats{}, errdefs.Wrap(errdefs.Invalid, err, "image config")
	}
	layers, err := img.Layers()
	if err != nil {
		return Stats{}, errdefs.Wrap(errdefs.Invalid, err, "image layers")
	}
	if len(layers) != len(cf.RootFS.DiffIDs) {
		return Stats{}, errdefs.New(errdefs.Invalid, "image has %d layers but its config lists %d diff ids", len(layers), len(cf.RootFS.DiffIDs))
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return Stats{}, errdefs.Wrap(errdefs.Internal, err, "unpack")
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return Stats{}, errdefs.Wrap(errdefs.Internal, err, "unpack")
	}
	defer root.Close()
	u := &unpacker{ctx: ctx, dir: filepath.Clean(dir), root: root, lim: lim, dirs: map[string]dirMeta{}, resolved: map[string]string{}}
	for i, l := range layers {
		if progress != nil {
			fmt.Fprintf(progress, "image: layer %d/%d %s\n", i+1, len(layers), cf.RootFS.DiffIDs[i].Hex[:12])
		}
		before := u.st
		if err := u.layer(l, cf.RootFS.DiffIDs[i]); err != nil {
			return u.st, fmt.Errorf("layer %d/%d: %w", i+1, len(layers), err)
		}
		if progress != nil {
			fmt.Fprintf(progress, "image: layer %d/%d done: %d entries, %s\n", i+1, len(layers), u.st.Files-before.Files, skill.FormatSize(u.st.Bytes-before.Bytes))
		}
	}
	if err := u.finishDirs(); err != nil {
		return u.st, err
	}
	return u.st, nil
}

type dirMeta struct {
	mode  fs.FileMode
	mtime time.Time
}

type unpacker struct {
	ctx  context.Context
	dir  string // absolute, clean
	root *os.Root
	lim  Limits
	st   Stats
	// raw counts the uncompressed bytes of all layers' tar streams.
	raw int64
	// dirs are the folders' final modes and times, applied at the end: a
	// folder stays 0700 while layers write into it, so a read-only one
	// (0555) cannot stop a later entry when skillbox is not root.
	dirs map[string]dirMeta
	// resolved caches in-root resolutions of parent folders; it is
	// cleared whenever an entry is removed or a link made, the only
	// changes that can alter a resolution.
	resolved map[string]string
	// layerPaths are the paths written by the current layer, layerAnc
	// their ancestors: an opaque whiteout removes everything else under
	// its folder.
	layerPaths, layerAnc map[string]bool
	// opaques are the current layer's opaque folders, emptied of what
	// lower layers put there once the layer is read (once each, however
	// many whiteouts name them).
	opaques map[string]bool
}

// budgetReader counts the layer stream's bytes against the raw cap.
type budgetReader struct {
	r io.Reader
	u *unpacker
}

func (b budgetReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.u.raw += int64(n)
	if b.u.raw > b.u.lim.MaxBytes+b.u.lim.MaxFiles*headerAllowance {
		return n, b.u.bytesCap()
	}
	return n, err
}

func (u *unpacker) bytesCap() error {
	return errdefs.New(errdefs.Limit, "image is larger than the unpack cap of %s (image.Limits.MaxBytes)", skill.FormatSize(u.lim.MaxBytes))
}

func (u *unpacker) layer(l v1.Layer, diffID v1.Hash) error {
	rc, err := openLayer(l)
	if err != nil {
		return errdefs.Wrap(errdefs.Unavailable, err, "open layer")
	}
	defer rc.Close()
	h := sha256.New()
	r := io.TeeReader(budgetReader{rc, u}, h)
	if err := u.apply(tar.NewReader(r)); err != nil {
		return err
	}
	// What follows the tar's end still belongs to the diff id.
	if _, err := io.Copy(io.Discard, r); err != nil {
		return classify(err, "read layer")
	}
	if diffID.Algorithm != "sha256" || hex.EncodeToString(h.Sum(nil)) != diffID.Hex {
		return errdefs.New(errdefs.Invalid, "layer content does not match its diff id %s", diffID)
	}
	return nil
}

// MaxZstdWindow bounds the window a zstd layer may ask its decoder for
// (zstd's own tools use at most 8 MiB below --long).
const MaxZstdWindow = 32 << 20

// zstdMagic starts a zstd frame.
var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

// openLayer returns l's tar stream. A zstd blob, told by its first bytes
// (a registry's media type may say gzip), is decoded here, with at most a
// MaxZstdWindow window and little memory besides: go-containerregistry's
// decoder takes the window a frame asks for, up to 512 MiB, so that a
// 2 KB layer cost half a gigabyte. Any other blob goes to
// go-containerregistry, which opens it again.
func openLayer(l v1.Layer) (io.ReadCloser, error) {
	blob, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	br := bufio.NewReader(blob)
	if magic, _ := br.Peek(len(zstdMagic)); !bytes.Equal(magic, zstdMagic) {
		blob.Close()
		return l.Uncompressed()
	}
	d, err := zstd.NewReader(br, zstd.WithDecoderMaxWindow(MaxZstdWindow), zstd.WithDecoderLowmem(true), zstd.WithDecoderConcurrency(1))
	if err != nil {
		blob.Close()
		return nil, err
	}
	return &zstdLayer{d: d, blob: blob}, nil
}

// zstdLayer is a zstd layer's tar stream; a window over the cap is a
// limit error.
type zstdLayer struct {
	d    *zstd.Decoder
	blob io.Closer
}

func (z *zstdLayer) Read(p []byte) (int, error) {
	n, err := z.d.Read(p)
	if errors.Is(err, zstd.ErrWindowSizeExceeded) {
		err = errdefs.New(errdefs.Limit, "layer asks for a zstd window over %s, the most skillbox decodes with (image.MaxZstdWindow)", skill.FormatSize(MaxZstdWindow))
	}
	return n, err
}

func (z *zstdLayer) Close() error {
	z.d.Close()
	return z.blob.Close()
}

// classify keeps an error's kind (a cap, a cancelled context) or makes it
// invalid: a layer that cannot be read as a tar is a bad image.
func classify(err error, what string) error {
	var e *errdefs.Error
	if errors.As(err, &e) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return errdefs.Wrap(errdefs.Invalid, err, what)
}

func (u *unpacker) apply(tr *tar.Reader) error {
	u.layerPaths, u.layerAnc, u.opaques = map[string]bool{}, map[string]bool{}, map[string]bool{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return u.hideOpaques()
		}
		if err != nil {
			return classify(err, "read layer")
		}
		if err := u.ctx.Err(); err != nil {
			return err
		}
		u.st.Files++ // counted now, so skipped entries count too
		if u.st.Files > u.lim.MaxFiles {
			return errdefs.New(errdefs.Limit, "image has more than %d entries, the unpack cap (image.Limits.MaxFiles)", u.lim.MaxFiles)
		}
		if err := u.entry(hdr, tr); err != nil {
			return err
		}
	}
}

// MaxDepth caps the folders an entry's path goes through: real images
// stay under a few dozen, and each level costs every entry below it (the
// root is walked a component at a time).
const MaxDepth = 128

// clean turns an entry's name into a path relative to the root: a leading
// "/" or "./" is dropped (the name is inside the root either way); ".."
// components are refused, and so are paths deeper than MaxDepth.
func clean(name string) (string, error) {
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "", errdefs.New(errdefs.Invalid, "entry %q: a name with .. is refused", name)
		}
	}
	if strings.ContainsRune(name, 0) {
		return "", errdefs.New(errdefs.Invalid, "entry %q: NUL in name", name)
	}
	p := strings.TrimPrefix(path.Clean("/"+name), "/")
	if depth := strings.Count(p, "/") + 1; depth > MaxDepth {
		return "", errdefs.New(errdefs.Limit, "entry %.80q…: %d levels deep, over the unpack cap of %d (image.MaxDepth)", name, depth, MaxDepth)
	}
	return p, nil
}

func (u *unpacker) entry(hdr *tar.Header, r io.Reader) error {
	name, err := clean(hdr.Name)
	if err != nil {
		return err
	}
	if name == "" {
		return nil // the root itself: its mode stays 0755
	}
	dir, base := path.Split(name)
	dir = strings.TrimSuffix(dir, "/")
	switch {
	case base == ".wh..wh..opq":
		return u.opaque(dir)
	case strings.HasPrefix(base, ".wh..wh."):
		return nil // aufs bookkeeping (.wh..wh.plnk, ...), never content
	case strings.HasPrefix(base, ".wh."):
		return u.whiteout(dir, strings.TrimPrefix(base, ".wh."), hdr.Name)
	}
	switch hdr.Typeflag {
	case tar.TypeChar, tar.TypeBlock:
		u.st.Devices++
		return nil
	case tar.TypeFifo:
		u.st.Fifos++
		return nil
	case tar.TypeDir, tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse, tar.TypeSymlink, tar.TypeLink:
	default:
		u.st.Other++
		return nil
	}
	if hdr.Mode&0o7000 != 0 {
		u.st.SetID++
	}
	if hasXattrs(hdr) {
		u.st.Xattrs++ // never written: security.capability would grant capabilities
	}
	parent, err := u.resolveDir(dir, true)
	if err != nil {
		return err
	}
	target := join(parent, base)
	old, err := u.root.Lstat(target)
	switch {
	case err == nil && old.IsDir() && hdr.Typeflag == tar.TypeDir:
		// A folder over a folder merges: only its metadata changes.
		u.dirs[target] = dirMeta{mode: dirMode(hdr.Mode), mtime: hdr.ModTime}
		u.mark(target)
		return nil
	case err == nil:
		if err := u.root.RemoveAll(target); err != nil {
			return errdefs.Wrap(errdefs.Internal, err, "replace "+target)
		}
		u.changed()
	case !errors.Is(err, fs.ErrNotExist):
		return u.fsErr(err, target)
	}
	u.mark(target)
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := u.root.Mkdir(target, 0o700); err != nil {
			return u.fsErr(err, target)
		}
		u.dirs[target] = dirMeta{mode: dirMode(hdr.Mode), mtime: hdr.ModTime}
	case tar.TypeSymlink:
		if hdr.Linkname == "" || strings.ContainsRune(hdr.Linkname, 0) {
			return errdefs.New(errdefs.Invalid, "entry %q: a symbolic link without a valid target", hdr.Name)
		}
		// The target is stored as written: it is resolved inside the
		// image's root where it is used, never here.
		if err := u.root.Symlink(hdr.Linkname, target); err != nil {
			return u.fsErr(err, target)
		}
		u.changed()
	case tar.TypeLink:
		return u.hardlink(hdr, target)
	default:
		return u.file(hdr, r, target)
	}
	return nil
}

func (u *unpacker) file(hdr *tar.Header, r io.Reader, target string) error {
	if hdr.Size < 0 || hdr.Size > u.lim.MaxBytes-u.st.Bytes {
		return u.bytesCap()
	}
	f, err := u.root.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return u.fsErr(err, target)
	}
	n, err := io.Copy(f, io.LimitReader(r, hdr.Size))
	u.st.Bytes += n
	if err == nil && n != hdr.Size {
		err = errdefs.New(errdefs.Invalid, "entry %q: %d of %d bytes", hdr.Name, n, hdr.Size)
	}
	if err == nil {
		err = f.Chmod(fileMode(hdr.Mode))
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return classify(err, "write "+target)
	}
	// Times matter: Python checks a .pyc against its source's mtime.
	if err := u.root.Chtimes(target, hdr.ModTime, hdr.ModTime); err != nil {
		return u.fsErr(err, target)
	}
	return nil
}

// hardlink links target to an entry already in the root: the link's name is
// resolved in the root like any other, and its last component is not
// followed (a link to a symbolic link links the symbolic link).
func (u *unpacker) hardlink(hdr *tar.Header, target string) error {
	ln, err := clean(hdr.Linkname)
	if err != nil || ln == "" {
		return errdefs.New(errdefs.Invalid, "entry %q: hard link to %q refused", hdr.Name, hdr.Linkname)
	}
	ldir, lbase := path.Split(ln)
	notInImage := errdefs.New(errdefs.Invalid, "entry %q: hard link to %q, which is not a file of the image", hdr.Name, hdr.Linkname)
	lparent, err := u.resolveDir(strings.TrimSuffix(ldir, "/"), false)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return notInImage
	}
	if err != nil {
		return err
	}
	src := join(lparent, lbase)
	fi, err := u.root.Lstat(src)
	if err != nil || fi.IsDir() {
		return notInImage
	}
	if err := u.root.Link(src, target); err != nil {
		return u.fsErr(err, target)
	}
	return nil
}

// whiteout removes name from folder dir (and everything under it).
func (u *unpacker) whiteout(dir, name, entry string) error {
	if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
		return errdefs.New(errdefs.Invalid, "whiteout %q names nothing", entry)
	}
	parent, err := u.resolveDir(dir, false)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil // nothing there to hide
	}
	if err != nil {
		return err
	}
	target := join(parent, name)
	if target == "" {
		return nil
	}
	if err := u.root.RemoveAll(target); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return u.fsErr(err, target)
	}
	delete(u.dirs, target)
	u.changed()
	return nil
}

// opaque marks folder dir to be emptied of what lower layers put there,
// at any depth, once the layer is read (hideOpaques): what this layer
// wrote stays, whatever the order of its entries (a layer's entries are
// not ordered against its whiteouts).
func (u *unpacker) opaque(dir string) error {
	parent, err := u.resolveDir(dir, true)
	if err != nil {
		return err
	}
	u.opaques[parent] = true
	u.mark(parent)
	return nil
}

// hideOpaques empties the layer's opaque folders of what lower layers put
// there, each once; one inside another is emptied with it.
func (u *unpacker) hideOpaques() error {
	dirs := slices.Sorted(maps.Keys(u.opaques))
	for i, d := range dirs {
		if i > 0 && isUnder(d, dirs[:i]) {
			continue
		}
		// Resolved again: a later entry of the layer may have replaced a
		// folder on the way by a link.
		if _, err := u.root.Lstat(orDot(d)); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := u.hideLower(d); err != nil {
			return err
		}
	}
	return nil
}

// isUnder reports whether d is inside one of the folders in dirs ("" is
// the root).
func isUnder(d string, dirs []string) bool {
	for _, p := range dirs {
		if p == "" || strings.HasPrefix(d, p+"/") {
			return true
		}
	}
	return false
}

// hideLower removes the entries under folder p that this layer did not
// write, keeping (and descending into) the folders on the way to those it
// did.
func (u *unpacker) hideLower(p string) error {
	d, err := u.root.Open(orDot(p))
	if err != nil {
		return u.fsErr(err, p)
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return u.fsErr(err, p)
	}
	for _, n := range names {
		c := join(p, n)
		if u.layerPaths[c] || u.layerAnc[c] {
			if fi, err := u.root.Lstat(c); err == nil && fi.IsDir() {
				if err := u.hideLower(c); err != nil {
					return err
				}
			}
			continue
		}
		if err := u.root.RemoveAll(c); err != nil {
			return u.fsErr(err, c)
		}
		delete(u.dirs, c)
		u.changed()
	}
	return nil
}

// mark records p as written by this layer.
func (u *unpacker) mark(p string) {
	u.layerPaths[p] = true
	for q := path.Dir(p); q != "." && q != "/" && !u.layerAnc[q]; q = path.Dir(q) {
		u.layerAnc[q] = true
	}
}

// resolveDir resolves folder dir (relative, clean, "" for the root) inside
// the root: symbolic links on the way are followed as if the root were "/"
// (an absolute link, or one with "..", ends inside the root), never out of
// it. With create, missing folders are made (0755 in the end); without,
// a missing one is fs.ErrNotExist. The result is relative ("" for the root)
// and names no symbolic link.
func (u *unpacker) resolveDir(dir string, create bool) (string, error) {
	if dir == "" {
		return "", nil
	}
	if r, ok := u.resolved[dir]; ok {
		return r, nil
	}
	// From the deepest folder on the way that is resolved already (every
	// folder resolved is cached), a name at a time, unless one is a link:
	// then the whole path is resolved by following it, as the jail would.
	r, link, err := u.walk(dir, create)
	if err != nil || !link {
		return r, err
	}
	full, err := securejoin.SecureJoinVFS(u.dir, dir, hostVFS{})
	if err != nil {
		return "", errdefs.Wrap(errdefs.Invalid, err, "resolve "+dir)
	}
	rel, err := filepath.Rel(u.dir, full)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", errdefs.New(errdefs.Invalid, "resolve %s: left the root", dir)
	}
	rel = filepath.ToSlash(rel)
	if rel == "." {
		rel = ""
	}
	if rel == "" {
		u.resolved[dir] = ""
		return "", nil
	}
	// rel names no link (its missing folders are made, or missing).
	if r, link, err = u.walk(rel, create); err != nil {
		return "", err
	}
	if link {
		return "", errdefs.New(errdefs.Invalid, "resolve %s: %s changed while it was resolved", dir, rel)
	}
	u.resolved[dir] = r
	return r, nil
}

// walk resolves dir a name at a time from its deepest resolved folder,
// each step one system call from an os.Root of the folder before (a walk
// from the image's root for every step would make a deep path cost the
// square of its depth, every time a removal clears the cache). A missing
// folder is made with create (0755 in the end), else fs.ErrNotExist.
// link is true, and the result empty, when a name on the way is a
// symbolic link: the caller resolves the path by following it.
func (u *unpacker) walk(dir string, create bool) (r string, link bool, err error) {
	names := strings.Split(dir, "/")
	start := 0
	for i := len(names) - 1; i > 0; i-- {
		if p, ok := u.resolved[strings.Join(names[:i], "/")]; ok {
			start, r = i, p
			break
		}
	}
	cur, err := u.root.OpenRoot(orDot(r))
	if err != nil {
		return "", false, u.fsErr(err, orDot(r))
	}
	defer func() { cur.Close() }()
	for i := start; i < len(names); i++ {
		name := names[i]
		cand := join(r, name)
		switch fi, err := cur.Lstat(name); {
		case err == nil && fi.IsDir():
		case errors.Is(err, fs.ErrNotExist) && create:
			if err := cur.Mkdir(name, 0o700); err != nil {
				return "", false, u.fsErr(err, cand)
			}
			u.dirs[cand] = dirMeta{mode: 0o755}
			u.mark(cand)
		case errors.Is(err, fs.ErrNotExist):
			return "", false, err
		case err != nil:
			return "", false, u.fsErr(err, cand)
		case fi.Mode()&fs.ModeSymlink != 0:
			return "", true, nil
		default:
			return "", false, errdefs.New(errdefs.Invalid, "entry under %s: %s is not a folder", dir, cand)
		}
		next, err := cur.OpenRoot(name)
		if err != nil {
			return "", false, u.fsErr(err, cand)
		}
		cur.Close()
		cur, r = next, cand
		u.resolved[strings.Join(names[:i+1], "/")] = r
	}
	return r, false, nil
}

// changed forgets cached resolutions: an entry was removed or a link made.
func (u *unpacker) changed() { clear(u.resolved) }

// finishDirs gives each folder its final mode and times (order does not
// matter: every folder keeps its owner's rwx).
func (u *unpacker) finishDirs() error {
	for p, m := range u.dirs {
		fi, err := u.root.Lstat(p)
		if err != nil || !fi.IsDir() {
			continue // removed or replaced by a later layer
		}
		if err := u.root.Chmod(p, m.mode); err != nil {
			return u.fsErr(err, p)
		}
	}
	for p, m := range u.dirs {
		if m.mtime.IsZero() {
			continue
		}
		if fi, err := u.root.Lstat(p); err == nil && fi.IsDir() {
			_ = u.root.Chtimes(p, m.mtime, m.mtime)
		}
	}
	return nil
}

// fsErr reports a file-system error while unpacking: a path the root
// refused (it would have left the root) is invalid, the rest internal.
func (u *unpacker) fsErr(err error, p string) error {
	var e *errdefs.Error
	if errors.As(err, &e) {
		return err
	}
	if strings.Contains(err.Error(), "escapes from parent") || errors.Is(err, syscall.ENAMETOOLONG) {
		return errdefs.Wrap(errdefs.Invalid, err, "entry "+p)
	}
	return errdefs.Wrap(errdefs.Internal, err, "unpack "+p)
}

// fileMode keeps a file's permission bits, without set-id, sticky, or
// write for group and others (the cache is the host user's; a jail mounts
// it read-only anyway).
func fileMode(m int64) fs.FileMode { return fs.FileMode(m) & 0o755 }

// dirMode is fileMode plus the owner's rwx, so that skillbox can always
// remove the tree.
func dirMode(m int64) fs.FileMode { return fs.FileMode(m)&0o755 | 0o700 }

func hasXattrs(hdr *tar.Header) bool {
	if len(hdr.Xattrs) > 0 { //nolint:staticcheck // read only to count them
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "SCHILY.xattr.") || strings.HasPrefix(k, "LIBARCHIVE.xattr.") {
			return true
		}
	}
	return false
}

func join(parent, base string) string {
	if parent == "" {
		return base
	}
	return parent + "/" + base
}

func orDot(p string) string {
	if p == "" {
		return "."
	}
	return p
}

// hostVFS is what SecureJoinVFS reads the tree with. The tree is a private
// folder only this unpacker writes to, so the path it returns stays
// resolved; every write still goes through an os.Root, which refuses a path
// that would leave the folder whatever happened in between.
type hostVFS struct{}

func (hostVFS) Lstat(name string) (os.FileInfo, error) { return os.Lstat(name) }
func (hostVFS) Readlink(name string) (string, error)   { return os.Readlink(name) }
