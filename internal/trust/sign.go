package trust

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"aead.dev/minisign"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/skill"
)

// SignatureFile is the name of a skill's signature, at the bundle root.
//
// The signature lives inside the bundle so that it travels with it, and is
// not part of the bundle's digest (skill.Files leaves it out), so signing
// changes neither the digest it signs nor the digests that the trust store
// and lockfile pin. Entries pinned before that change include the
// signature file; LegacyDigest and Entry.Matches keep them working.
const SignatureFile = skill.SignatureFile

// maxSignatureFile bounds skill.minisig (a real one is about 300 bytes).
const maxSignatureFile = 8 << 10

// signedPrefix starts the trusted comment of every skillbox signature.
const signedPrefix = "skillbox-skill "

// SignedDigest is the digest of the bundle in dir without its SignatureFile:
// what a signature covers. It equals skill.Digest.
func SignedDigest(dir string) (string, error) {
	entries, err := skill.Files(dir)
	if err != nil {
		return "", err
	}
	return signedDigest(FilesOf(entries)), nil
}

// signedDigest is the digest of files without a SignatureFile: for a file
// list pinned before skill.Files left the signature out, the digest that
// skill.Digest now gives the same bundle.
func signedDigest(files []File) string {
	var out []File
	for _, f := range files {
		if f.Path != SignatureFile {
			out = append(out, f)
		}
	}
	return DigestFiles(out)
}

// LegacyDigest is the digest the bundle in dir had before skill.Digest left
// its signature out: the digest of its files with the SignatureFile, as
// lockfiles and trust stores written by earlier versions pinned it. ok is
// false when dir has no signature file (the two digests are then equal).
func LegacyDigest(dir string) (digest string, ok bool, err error) {
	entries, err := skill.Files(dir)
	if err != nil {
		return "", false, err
	}
	path := filepath.Join(dir, SignatureFile)
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return "", false, nil
	}
	f, err := openRegular(path)
	if err != nil {
		return "", false, errdefs.New(errdefs.Invalid, "signature %s: %v", path, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(f, maxSignatureFile+1))
	if err != nil || n > maxSignatureFile {
		return "", false, errdefs.New(errdefs.Invalid, "signature %s: unreadable or too large", path)
	}
	mode := skill.ModeFile
	if fi.Mode()&0o111 != 0 {
		mode = skill.ModeExec
	}
	entries = append(entries, skill.FileEntry{Path: SignatureFile, Mode: mode, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))})
	slices.SortFunc(entries, func(a, b skill.FileEntry) int { return strings.Compare(a.Path, b.Path) })
	return skill.DigestEntries(entries), true, nil
}

// HasSignature reports whether the bundle in dir has a SignatureFile.
func HasSignature(dir string) bool {
	_, err := os.Lstat(filepath.Join(dir, SignatureFile))
	return err == nil
}

// Sign signs the bundle of sk with key and writes dir/skill.minisig. The
// signed message is the SignedDigest as text ("sha256:..."), so the minisign
// tool can verify it too; the trusted comment names the skill.
func Sign(sk *skill.Skill, key minisign.PrivateKey) (digest string, err error) {
	digest, err = SignedDigest(sk.Dir)
	if err != nil {
		return "", err
	}
	comment := fmt.Sprintf("%sid=%s version=%s digest=%s", signedPrefix, sk.ID, oneWord(sk.Bundle.Manifest.Version), digest)
	untrusted := "skillbox skill signature, key " + KeyID(key.ID())
	sig := minisign.SignWithComments(key, []byte(digest), comment, untrusted)
	if err := WriteFileAtomic(filepath.Join(sk.Dir, SignatureFile), sig, 0o644); err != nil {
		return "", err
	}
	return digest, nil
}

func oneWord(s string) string { return strings.Join(strings.Fields(s), "_") }

// Verified describes a signature that verified.
type Verified struct {
	// KeyID is the signing key's id.
	KeyID string
	// ID is the skill id the signature was made for (its trusted
	// comment's id=), which is the id of the skill verified.
	ID string
	// Digest is the signed digest (the bundle without its signature).
	Digest string
	// Comment is the signed (trusted) comment.
	Comment string
}

// UnknownKeyError is a well-formed signature by a key that is not trusted.
type UnknownKeyError struct{ KeyID string }

func (e *UnknownKeyError) Error() string {
	return fmt.Sprintf("it is signed by key %s, which is not a trusted publisher", e.KeyID)
}

// ErrorKind reports Denied.
func (e *UnknownKeyError) ErrorKind() errdefs.Kind { return errdefs.Denied }

// OtherSkillError is a signature that verifies, by a known key, but was
// made for another skill id than the one it is checked as: the same files
// copied under another id. A signature vouches for its files under the id
// its publisher signed them as only, since the id selects the grants a
// policy file gives.
type OtherSkillError struct {
	// KeyID is the signing key's id.
	KeyID string
	// Signed is the id the signature was made for; ID the skill's id.
	Signed, ID string
}

func (e *OtherSkillError) Error() string {
	return fmt.Sprintf("its signature by key %s is for skill %s, not %s: its publisher signed these files as another skill, and a signature vouches for a bundle only under the id it was signed as", e.KeyID, e.Signed, e.ID)
}

// ErrorKind reports Denied.
func (e *OtherSkillError) ErrorKind() errdefs.Kind { return errdefs.Denied }

// Verify checks the signature of sk (sk.Dir/skill.minisig) against its
// bundle, its id and keys. Errors: errdefs.NotFound without a signature
// file; errdefs.Invalid for a malformed one; *UnknownKeyError when no key
// matches its key id; errdefs.Denied when it does not verify (the bundle
// changed after signing, or a forgery); *OtherSkillError when it verifies
// but was made for another skill id.
func Verify(sk *skill.Skill, keys []minisign.PublicKey) (*Verified, error) {
	entries, err := skill.Files(sk.Dir)
	if err != nil {
		return nil, err
	}
	return verifyFiles(sk.Dir, sk.ID, FilesOf(entries), keys)
}

// SignedID is the skill id that the signature in dir says it was made for
// (its trusted comment's id=), unverified: for the trust review and
// inspect, which warn about a signature made for another id. ok is false
// without a readable skillbox signature.
func SignedID(dir string) (id string, ok bool) {
	sig, _, err := readSignature(filepath.Join(dir, SignatureFile))
	if err != nil {
		return "", false
	}
	id, err = commentID(sig.TrustedComment)
	return id, err == nil
}

// commentID is the id= of a skillbox signature's trusted comment
// ("skillbox-skill id=category/name version=... digest=...", as Sign
// writes it; every skillbox signature has one).
func commentID(comment string) (string, error) {
	rest, ok := strings.CutPrefix(comment, signedPrefix)
	if !ok {
		return "", fmt.Errorf("it is not a skillbox skill signature (its trusted comment is %q)", comment)
	}
	for _, f := range strings.Fields(rest) {
		if id, ok := strings.CutPrefix(f, "id="); ok && skill.ValidID(id) {
			return id, nil
		}
	}
	return "", fmt.Errorf("its trusted comment %q names no skill id (id=category/name)", comment)
}

// readSignature reads and parses the signature file at path; data is the
// file as read, which minisign.Verify checks.
func readSignature(path string) (sig minisign.Signature, data []byte, err error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return sig, nil, errdefs.New(errdefs.NotFound, "%s has no signature (%s)", filepath.Dir(path), SignatureFile)
	}
	if err != nil {
		return sig, nil, errdefs.New(errdefs.Invalid, "signature %s: %v", path, err)
	}
	if !fi.Mode().IsRegular() {
		return sig, nil, errdefs.New(errdefs.Invalid, "signature %s is not a regular file", path)
	}
	f, err := openRegular(path)
	if err != nil {
		return sig, nil, errdefs.New(errdefs.Invalid, "signature %s: %v", path, err)
	}
	data, err = io.ReadAll(io.LimitReader(f, maxSignatureFile+1))
	f.Close()
	if err != nil || len(data) > maxSignatureFile {
		return sig, nil, errdefs.New(errdefs.Invalid, "signature %s: unreadable or too large", path)
	}
	if err := sig.UnmarshalText(data); err != nil {
		return sig, nil, errdefs.New(errdefs.Invalid, "signature %s is malformed: %v", path, err)
	}
	return sig, data, nil
}

// verifyFiles is Verify for a bundle whose file list the caller already
// took, so that the digest checked is the one the caller pinned.
func verifyFiles(dir, skillID string, files []File, keys []minisign.PublicKey) (*Verified, error) {
	path := filepath.Join(dir, SignatureFile)
	sig, data, err := readSignature(path)
	if err != nil {
		return nil, err
	}
	signedID, err := commentID(sig.TrustedComment)
	if err != nil {
		return nil, errdefs.New(errdefs.Invalid, "signature %s: %v", path, err)
	}
	id := KeyID(sig.KeyID)
	var key *minisign.PublicKey
	for i := range keys {
		if keys[i].ID() == sig.KeyID {
			key = &keys[i]
			break
		}
	}
	if key == nil {
		return nil, &UnknownKeyError{KeyID: id}
	}
	digest := signedDigest(files)
	if !minisign.Verify(*key, []byte(digest), data) {
		return nil, errdefs.New(errdefs.Denied, "signature by key %s does not match the bundle (it was signed as %q; the bundle's digest is %s): the skill changed after it was signed, or the signature is forged", id, sig.TrustedComment, digest)
	}
	// Checked once the signature verified, so that the id it names is
	// the publisher's word and not a forger's.
	if signedID != skillID {
		return nil, &OtherSkillError{KeyID: id, Signed: signedID, ID: skillID}
	}
	return &Verified{KeyID: id, ID: signedID, Digest: digest, Comment: sig.TrustedComment}, nil
}

// GenerateKey makes a new minisign key pair.
func GenerateKey() (minisign.PublicKey, minisign.PrivateKey, error) {
	return minisign.GenerateKey(rand.Reader)
}

// ReadPrivateKey reads a minisign secret key file; password decrypts an
// encrypted one (an unencrypted key needs none).
func ReadPrivateKey(path, password string) (minisign.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return minisign.PrivateKey{}, errdefs.New(errdefs.Invalid, "secret key: %v", err)
	}
	if minisign.IsEncrypted(data) {
		if password == "" {
			return minisign.PrivateKey{}, errdefs.New(errdefs.Invalid, "secret key %s is encrypted: give its password with --password-file or SKILLBOX_KEY_PASSWORD", path)
		}
		k, err := minisign.DecryptKey(password, data)
		if err != nil {
			return k, errdefs.New(errdefs.Invalid, "secret key %s: wrong password or damaged key", path)
		}
		return k, nil
	}
	var k minisign.PrivateKey
	if err := k.UnmarshalText(data); err != nil {
		return k, errdefs.New(errdefs.Invalid, "secret key %s: %v", path, err)
	}
	return k, nil
}

// ReadPublicKey reads a minisign public key file (or a file holding just
// the base64 key line).
func ReadPublicKey(path string) (minisign.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return minisign.PublicKey{}, errdefs.New(errdefs.Invalid, "public key: %v", err)
	}
	if len(data) > 4096 {
		return minisign.PublicKey{}, errdefs.New(errdefs.Invalid, "public key %s: file is too large for a minisign key", path)
	}
	var k minisign.PublicKey
	if err := k.UnmarshalText([]byte(strings.TrimSpace(string(data)))); err != nil {
		return k, errdefs.New(errdefs.Invalid, "public key %s: %v", path, err)
	}
	return k, nil
}

// openRegular opens path to read, refusing anything but a regular file as
// it is when opened: one Lstat saw may have been swapped since for a FIFO
// (whose open would wait forever) or a device.
func openRegular(path string) (*os.File, error) {
	f, err := os.OpenFile(path, openFlags, 0)
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, errors.New("not a regular file (it changed while skillbox was reading it)")
	}
	return f, nil
}
