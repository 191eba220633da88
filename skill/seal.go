package skill

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"

	"github.com/skillbox-dev/skillbox/errdefs"
)

// Seal returns a folder in store holding a copy of s's bundle whose content
// digest is s.Digest, copying the bundle there on first use; later calls
// for the same digest return the same folder. Backends run the sealed copy,
// never s.Dir, so what runs is exactly what the digest (and so the trust
// store and the lockfile) approved, even if the skill's folder is being
// rewritten meanwhile, and a long-lived sandbox keeps running the version
// it was opened for.
//
// The copy is made by reading the bundle once and hashing the bytes as they
// are written; if they do not make s.Digest, or the manifest, instructions
// or card Load parsed differ from the copy's, the skill changed while it
// was being read and Seal refuses with errdefs.Denied. Folders are named by
// the digest's hex digits and created atomically (a rename), so concurrent
// sealers agree. Nothing in store is ever changed or removed by skillbox
// after it is created (one folder per digest ever run: it grows). Deleting
// store is safe while no skillbox process runs; a long-lived sandbox (a
// zygote of `skillbox serve`) keeps reading its folder.
func Seal(s *Skill, store string) (string, error) {
	hexd, ok := strings.CutPrefix(s.Digest, "sha256:")
	if _, err := hex.DecodeString(hexd); !ok || err != nil || len(hexd) != 64 {
		return "", errdefs.New(errdefs.Internal, "skill %s: malformed digest %q", s.ID, s.Digest)
	}
	final := filepath.Join(store, hexd)
	if fi, err := os.Lstat(final); err == nil && fi.IsDir() {
		return final, checkRead(s, final)
	}
	if err := os.MkdirAll(store, 0o700); err != nil {
		return "", errdefs.New(errdefs.Unavailable, "bundle store %s: %v", store, err)
	}
	tmp, err := os.MkdirTemp(store, ".new-"+hexd[:12]+"-")
	if err != nil {
		return "", errdefs.New(errdefs.Unavailable, "bundle store %s: %v", store, err)
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", copyErr(err)
	}
	entries, err := files(s.Dir, tmp)
	if err != nil {
		return "", err
	}
	if got := DigestEntries(entries); got != s.Digest {
		return "", changed(s, "its digest was "+s.Digest+", its copy's is "+got)
	}
	if err := checkRead(s, tmp); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, final); err != nil {
		// Another process sealed the same digest first: same content.
		if fi, serr := os.Lstat(final); serr == nil && fi.IsDir() {
			return final, nil
		}
		return "", copyErr(err)
	}
	return final, nil
}

// checkRead verifies that the files Load parsed for s hold the same bytes
// in dir.
func checkRead(s *Skill, dir string) error {
	if s.Bundle == nil {
		return nil
	}
	for name, sum := range s.Bundle.read {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return changed(s, name+" is gone from its copy")
		}
		if got := sha256.Sum256(data); !bytes.Equal(got[:], sum[:]) {
			return changed(s, "the "+name+" it loaded is not the one in its copy")
		}
	}
	return nil
}

func changed(s *Skill, detail string) error {
	return errdefs.New(errdefs.Denied, "skill %s changed in %s while skillbox was reading it (%s); run it again once its files are no longer being written", s.ID, s.Dir, detail)
}
