package skill

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/skillbox-dev/skillbox/errdefs"
)

// Bundle size caps.
const (
	// maxFiles bounds the entries (files, directories, symlinks) of a bundle.
	maxFiles = 10_000
	// maxTotalBytes bounds the summed size of a bundle's regular files.
	maxTotalBytes int64 = 256 << 20
)

// The normalised modes a FileEntry can have. Only the kind and, for regular
// files, whether any execute bit is set are kept: owner, group and other
// permission bits vary between checkouts and must not change a digest.
const (
	ModeDir     = fs.ModeDir | 0o755
	ModeFile    = fs.FileMode(0o644)
	ModeExec    = fs.FileMode(0o755)
	ModeSymlink = fs.ModeSymlink | 0o777
)

// FileEntry describes one entry of a bundle.
type FileEntry struct {
	// Path is relative to the bundle root and slash-separated.
	Path string
	// Mode is one of ModeDir, ModeFile, ModeExec and ModeSymlink.
	Mode fs.FileMode
	// Size is the size in bytes of a regular file; 0 otherwise.
	Size int64
	// SHA256 is the hex SHA-256 of a regular file's contents; "" otherwise.
	SHA256 string
	// Target is a symlink's target as written; "" otherwise.
	Target string
}

// SignatureFile is the name of a bundle's minisign signature (written by
// `skillbox sign`, checked by package trust), at the bundle root.
const SignatureFile = "skill.minisig"

// ignored reports whether a directory entry is left out of a bundle's file
// list: bytecode caches and version-control data are not part of a skill.
func ignored(name string, isDir bool) bool {
	return name == ".git" || (isDir && name == "__pycache__")
}

// isSignature reports whether the entry at rel (slash-separated, relative
// to the bundle root) of type t is the bundle's signature, which Files
// leaves out: a signature must not change the digest it signs. Only a
// regular file at the root counts; anything else of that name is listed
// (and so pinned) like any other file.
func isSignature(rel string, t fs.FileMode) bool {
	return rel == SignatureFile && t.IsRegular()
}

// Files lists the entries of the bundle in dir, sorted by Path (byte order),
// hashing every regular file. The root itself is not listed; "__pycache__"
// directories and ".git" (directory or file) are skipped with everything in
// them, and so is the signature, a regular file SignatureFile at the root:
// signing a bundle does not change its digest (nor its sealed copy, which
// runs without it).
//
// It refuses, with errdefs.Invalid, bundles holding special files (fifo,
// device, socket), symlinks that are absolute or resolve outside the bundle
// (directly, with "..", or through other symlinks), a name or symlink target
// that is not valid UTF-8 or holds a control character (see checkName),
// more than 10,000 entries or more than 256 MiB of file contents. A dir that does not exist is
// errdefs.NotFound.
func Files(dir string) ([]FileEntry, error) { return files(dir, "") }

// files is Files; when dst is not "", it also copies the bundle into the
// existing, empty directory dst as it reads it, so that the entries (and so
// the digest) describe exactly the bytes written there (see Seal).
// Directories are created 0755; regular files 0644, or 0755 with an execute
// bit; symlinks with the same target.
func files(dir, dst string) ([]FileEntry, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, errdefs.New(errdefs.Invalid, "bundle %q: %v", dir, err)
	}
	// A root that is itself a symlink (a linked skill folder) is walked at
	// its target; links inside it are still confined to it.
	if real, err := filepath.EvalSymlinks(root); err == nil {
		root = real
	} else if errors.Is(err, fs.ErrNotExist) {
		return nil, errdefs.New(errdefs.NotFound, "bundle %s does not exist", root)
	}
	fi, err := os.Stat(root)
	if err != nil {
		return nil, errdefs.New(errdefs.Invalid, "bundle %s: %v", root, err)
	}
	if !fi.IsDir() {
		return nil, errdefs.New(errdefs.Invalid, "bundle %s is not a directory", root)
	}
	var (
		entries []FileEntry
		total   int64
	)
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return errdefs.New(errdefs.Invalid, "bundle %s: %v", root, err)
		}
		if p == root {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return errdefs.New(errdefs.Invalid, "bundle %s: %v", root, err)
		}
		out := ""
		if dst != "" {
			out = filepath.Join(dst, rel)
		}
		rel = filepath.ToSlash(rel)
		if ignored(d.Name(), d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if isSignature(rel, d.Type()) {
			return nil
		}
		if err := checkName(root, rel, d.Name(), d.IsDir()); err != nil {
			return err
		}
		if len(entries) >= maxFiles {
			return errdefs.New(errdefs.Invalid, "bundle %s has more than %d files and directories", root, maxFiles)
		}
		e := FileEntry{Path: rel}
		switch t := d.Type(); {
		case t.IsDir():
			e.Mode = ModeDir
			if out != "" {
				// Chmod: the umask must not hide the copy from the jail's user.
				if err := os.Mkdir(out, 0o755); err != nil {
					return copyErr(err)
				}
				if err := os.Chmod(out, 0o755); err != nil {
					return copyErr(err)
				}
			}
		case t&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return errdefs.New(errdefs.Invalid, "bundle %s: %v", root, err)
			}
			if why := notText(target); why != "" {
				return errdefs.New(errdefs.Invalid, "bundle %s: symlink %s -> %s: its target %s; change it", root, strconv.Quote(rel), strconv.Quote(target), why)
			}
			if err := checkLink(root, rel, target); err != nil {
				return err
			}
			e.Mode, e.Target = ModeSymlink, target
			if out != "" {
				if err := os.Symlink(target, out); err != nil {
					return copyErr(err)
				}
			}
		case t.IsRegular():
			info, err := d.Info()
			if err != nil {
				return errdefs.New(errdefs.Invalid, "bundle %s: %v", root, err)
			}
			e.Mode = ModeFile
			if info.Mode()&0o111 != 0 {
				e.Mode = ModeExec
			}
			if info.Size() > maxTotalBytes-total {
				return tooBig(root)
			}
			sum, n, err := copyFile(p, info, maxTotalBytes-total, out, e.Mode.Perm())
			if err != nil {
				return err
			}
			e.Size, e.SHA256 = n, sum
			total += n
		default:
			return errdefs.New(errdefs.Invalid, "bundle %s: %s is a %s; bundles may hold only files, directories and symlinks", root, rel, typeName(t))
		}
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Path < entries[j].Path })
	return entries, nil
}

// checkName refuses the entry rel (named name) of the bundle in root if
// its name is not text that can be shown and recorded as it is: bytes that
// are not UTF-8 become U+FFFD in JSON, so the trust store would pin a file
// list that no longer hashes to its digest (and refuse itself on the next
// read); control characters (a newline, a tab, ...) would let a name pass
// for several, or for other text, in the trust review, the list of what
// changed and the audit log. No skill needs either, so the bundle is
// refused rather than the name escaped everywhere it is shown. Names are
// checked one at a time as the walk reaches them, so the names of what
// Files leaves out (.git, __pycache__) are never looked at.
func checkName(root, rel, name string, isDir bool) error {
	why := notText(name)
	if why == "" {
		return nil
	}
	what := "file"
	if isDir {
		what = "folder"
	}
	return errdefs.New(errdefs.Invalid, "bundle %s: %s name %s %s; rename it (every name in a bundle must be text: skillbox pins, shows and records them)", root, what, strconv.Quote(rel), why)
}

// notText says why s is not valid UTF-8 free of control characters, or
// returns "".
func notText(s string) string {
	switch {
	case !utf8.ValidString(s):
		return "is not valid UTF-8"
	case strings.ContainsFunc(s, unicode.IsControl):
		return "holds a control character (a newline, a tab, ...)"
	}
	return ""
}

func tooBig(root string) error {
	return errdefs.New(errdefs.Invalid, "bundle %s is larger than %s", root, FormatSize(maxTotalBytes))
}

// copyErr reports a failure to write a bundle's copy.
func copyErr(err error) error {
	return errdefs.New(errdefs.Internal, "copy bundle: %v", err)
}

// copyFile hashes the regular file at p as hashFile does and, when out is
// not "", writes the hashed bytes to a new file out with permission perm.
func copyFile(p string, info fs.FileInfo, limit int64, out string, perm fs.FileMode) (string, int64, error) {
	if out == "" {
		return hashFile(p, info, limit, io.Discard)
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return "", 0, copyErr(err)
	}
	if err := f.Chmod(perm); err != nil { // whatever the umask
		f.Close()
		return "", 0, copyErr(err)
	}
	sum, n, err := hashFile(p, info, limit, f)
	if cerr := f.Close(); err == nil && cerr != nil {
		return "", 0, copyErr(cerr)
	}
	return sum, n, err
}

// hashFile hashes the regular file at p, which Lstat described as info,
// reading at most limit bytes and writing what it hashes to w.
func hashFile(p string, info fs.FileInfo, limit int64, w io.Writer) (string, int64, error) {
	// Not os.Open: p may have been swapped for a FIFO since (see openFlags).
	f, err := os.OpenFile(p, openFlags, 0)
	if err != nil {
		return "", 0, errdefs.New(errdefs.Invalid, "bundle file %s: %v", p, err)
	}
	defer f.Close()
	// The file must still be the one we looked at (not swapped for a link,
	// a FIFO or another file).
	if now, err := f.Stat(); err != nil || !os.SameFile(now, info) || !now.Mode().IsRegular() {
		return "", 0, errdefs.New(errdefs.Invalid, "bundle file %s changed while it was being read", p)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(h, w), io.LimitReader(f, limit+1))
	if err != nil {
		return "", 0, errdefs.New(errdefs.Invalid, "bundle file %s: %v", p, err)
	}
	if n > limit {
		return "", 0, tooBig(filepath.Dir(p))
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// maxLinkHops bounds symlink resolution, as the kernel's ELOOP does.
const maxLinkHops = 40

// checkLink verifies that the symlink at rel (slash-separated, relative to
// root) with the given target resolves inside root, following further
// symlinks component by component as the kernel would. A dangling target is
// fine as long as its path stays inside.
func checkLink(root, rel, target string) error {
	outside := func() error {
		return errdefs.New(errdefs.Invalid, "bundle %s: symlink %s -> %s points outside the bundle", root, rel, target)
	}
	if target == "" {
		return errdefs.New(errdefs.Invalid, "bundle %s: symlink %s has an empty target", root, rel)
	}
	if path.IsAbs(target) || filepath.IsAbs(target) || filepath.VolumeName(target) != "" {
		return outside()
	}
	var cur []string // resolved real path so far, as components under root
	if d := path.Dir(rel); d != "." {
		cur = strings.Split(d, "/")
	}
	todo := strings.Split(filepath.ToSlash(target), "/")
	hops := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(cur) == 0 {
				return outside()
			}
			cur = cur[:len(cur)-1]
			continue
		}
		next := append(cur[:len(cur):len(cur)], c)
		full := filepath.Join(append([]string{root}, next...)...)
		fi, err := os.Lstat(full)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			cur = next // missing or not a link: a plain component
			continue
		}
		hops++
		if hops > maxLinkHops {
			return errdefs.New(errdefs.Invalid, "bundle %s: symlink %s -> %s: too many levels of symlinks", root, rel, target)
		}
		t, err := os.Readlink(full)
		if err != nil || t == "" || path.IsAbs(t) || filepath.IsAbs(t) {
			return outside()
		}
		todo = append(strings.Split(filepath.ToSlash(t), "/"), todo...)
	}
	return nil
}

// LinkStaysInside reports whether the symlink at rel (slash-separated,
// relative to root, a resolved path) with the given target resolves inside
// root by the rule bundles follow (an absolute target never does), for a
// folder that is not a bundle: an image build's context.
func LinkStaysInside(root, rel, target string) bool { return checkLink(root, rel, target) == nil }

// digestMagic starts every digest input; it versions the format.
const digestMagic = "skillbox-bundle-digest-v1\n"

// Digest returns the content digest of the bundle in dir, "sha256:" and 64
// hex digits. It changes when any file's contents, kind or executable bit,
// any path, or any symlink target changes, and is independent of file times,
// owners, other permission bits and creation order. The bundle's signature
// (SignatureFile) is not part of it, so signing leaves it unchanged.
//
// It is the SHA-256 of the following bytes (u64 is an 8-byte big-endian
// unsigned integer), using the entries of Files in their order:
//
//	"skillbox-bundle-digest-v1\n"
//	for each entry:
//	  u64(len(path)) path                   the slash-separated relative path
//	  one byte kind: 'd' directory, 'f' regular file, 'x' regular file with an
//	                 execute bit, 'l' symlink
//	  'f', 'x':  u64(size) and the 32-byte SHA-256 of the contents
//	  'l':       u64(len(target)) target    the link text as written
//	  'd':       nothing
//
// Errors are those of Files.
func Digest(dir string) (string, error) {
	entries, err := Files(dir)
	if err != nil {
		return "", err
	}
	return DigestEntries(entries), nil
}

// DigestEntries is the digest of a file list as Files returns it (sorted by
// path), in the format documented on Digest. The trust store uses it to
// check a pinned file list against its digest.
func DigestEntries(entries []FileEntry) string {
	h := sha256.New()
	io.WriteString(h, digestMagic)
	var n [8]byte
	u64 := func(v uint64) {
		binary.BigEndian.PutUint64(n[:], v)
		h.Write(n[:])
	}
	for _, e := range entries {
		u64(uint64(len(e.Path)))
		io.WriteString(h, e.Path)
		switch e.Mode {
		case ModeDir:
			h.Write([]byte{'d'})
		case ModeSymlink:
			h.Write([]byte{'l'})
			u64(uint64(len(e.Target)))
			io.WriteString(h, e.Target)
		default:
			kind := byte('f')
			if e.Mode == ModeExec {
				kind = 'x'
			}
			h.Write([]byte{kind})
			u64(uint64(e.Size))
			sum, _ := hex.DecodeString(e.SHA256)
			h.Write(sum)
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// typeName names the kind of a file mode for messages.
func typeName(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m&fs.ModeNamedPipe != 0:
		return "fifo"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "device"
	case m&fs.ModeIrregular != 0:
		return "irregular file"
	}
	return fmt.Sprintf("file of mode %v", m)
}
