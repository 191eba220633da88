// Package trust keeps the operator's trust decisions: a store of trusted
// external skills, each pinned to its bundle's content digest (with the file
// list, so that a changed skill can be shown as a diff), and of trusted
// publisher keys whose minisign signatures let a skill pass the gate.
//
// Nothing here fails open. A store that cannot be read or parsed, or that
// other users may write, is an error; a pinned skill whose digest changed
// is denied with the list of added, removed and modified files; a signature
// that does not verify is denied.
package trust

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"aead.dev/minisign"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/atomicfile"
	"github.com/skillbox-dev/skillbox/internal/shellquote"
	"github.com/skillbox-dev/skillbox/internal/strictjson"
	"github.com/skillbox-dev/skillbox/policy"
	"github.com/skillbox-dev/skillbox/skill"
)

// maxStoreFile bounds the store file.
const maxStoreFile = 64 << 20

// storeVersion is the only store format version this code reads.
const storeVersion = 1

// Store is the trust store: a JSON file (mode 0600) written atomically.
type Store struct {
	// Version is the format version, 1.
	Version int `json:"version"`
	// Skills are the trusted skills, one entry per id.
	Skills []Entry `json:"skills"`
	// Publishers are the trusted publisher keys.
	Publishers []Publisher `json:"publishers"`

	path string
}

// Entry is one trusted skill.
type Entry struct {
	ID      string `json:"id"`
	Version string `json:"version"`
	// Path is where the skill was when it was trusted (for information; the
	// pin is the digest).
	Path   string `json:"path"`
	Digest string `json:"digest"`
	// Files is the bundle's file list when it was trusted, for diffs.
	Files     []File    `json:"files"`
	TrustedAt time.Time `json:"trusted_at"`
	// Image, for a skill with execution: container, is the image it was
	// trusted with: the skill runs that image only (a tag that moves, or
	// an archive that changes, is untrusted like an edited bundle).
	Image *ImagePin `json:"image,omitempty"`
	// Environment, for a skill whose manifest declares requirements, is
	// the resolved set of its environment when it was trusted
	// ("name==version sha256=HEX", sorted, as a lockfile records it): an
	// environment that resolves to another set is untrusted like an
	// edited bundle.
	Environment []string `json:"environment,omitempty"`
}

// ImagePin is the image a trusted (or locked) skill runs: its reference as
// the manifest writes it and the digest it resolved to (image.Pinned).
type ImagePin struct {
	Ref    string `json:"ref"`
	Digest string `json:"digest"`
}

// File is one bundle entry in a trust store or lockfile.
type File struct {
	Path string `json:"path"`
	// Kind is "d" directory, "f" file, "x" executable file, "l" symlink.
	Kind   string `json:"kind"`
	Size   int64  `json:"size,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	Target string `json:"target,omitempty"`
}

// Publisher is a trusted minisign public key.
type Publisher struct {
	// Name is the operator's label for the key.
	Name string `json:"name"`
	// KeyID is the minisign key id in upper-case hex, as minisign prints it.
	KeyID string `json:"key_id"`
	// Key is the base64 public key (the second line of a minisign .pub file).
	Key     string    `json:"key"`
	AddedAt time.Time `json:"added_at"`
}

// DefaultPath is $XDG_CONFIG_HOME/skillbox/trust.json (see policy.ConfigDir);
// "" when there is no configuration folder: Open then gives an empty store
// and Update refuses.
func DefaultPath(getenv func(string) string) string {
	if dir := policy.ConfigDir(getenv); dir != "" {
		return filepath.Join(dir, "trust.json")
	}
	return ""
}

// noPath is the error for changing a store that has no path.
func noPath() error {
	return errdefs.New(errdefs.Unavailable, "no trust store: neither XDG_CONFIG_HOME nor HOME is set to an absolute path")
}

// Open reads the store at path. A missing file (or path "") is an empty store; anything
// else wrong with it is errdefs.Invalid naming the file and the problem.
func Open(path string) (*Store, error) {
	s := &Store{Version: storeVersion, path: path}
	if path == "" {
		return s, nil
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, broken(path, err.Error())
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, broken(path, err.Error())
	}
	if !fi.Mode().IsRegular() {
		return nil, broken(path, "not a regular file")
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return nil, broken(path, fmt.Sprintf("other users may write it (mode %v); run chmod 600 %s", fi.Mode().Perm(), path))
	}
	data, err := io.ReadAll(io.LimitReader(f, maxStoreFile+1))
	if err != nil {
		return nil, broken(path, err.Error())
	}
	if len(data) > maxStoreFile {
		return nil, broken(path, "file is too large")
	}
	if err := strictjson.Decode(data, s); err != nil {
		return nil, broken(path, err.Error())
	}
	s.path = path
	if err := s.validate(); err != nil {
		return nil, broken(path, err.Error())
	}
	return s, nil
}

func broken(path, msg string) error {
	return errdefs.New(errdefs.Invalid, "trust store %s: %s (nothing in it is trusted until it is fixed or removed)", path, msg)
}

var digestRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^sha256:[0-9a-f]{64}$`) })

// ValidDigest reports whether d looks like a bundle digest.
func ValidDigest(d string) bool { return digestRE().MatchString(d) }

func (s *Store) validate() error {
	if s.Version != storeVersion {
		return fmt.Errorf("unknown version %d (this skillbox reads %d)", s.Version, storeVersion)
	}
	ids := map[string]bool{}
	for i, e := range s.Skills {
		if !skill.ValidID(e.ID) {
			return fmt.Errorf("skills[%d]: %q is not a skill id", i, e.ID)
		}
		if ids[e.ID] {
			return fmt.Errorf("skills[%d]: %s is listed twice", i, e.ID)
		}
		ids[e.ID] = true
		if !ValidDigest(e.Digest) {
			return fmt.Errorf("skills[%d] (%s): digest %q is not sha256:<64 hex digits>", i, e.ID, e.Digest)
		}
		if err := validFiles(e.Files); err != nil {
			return fmt.Errorf("skills[%d] (%s): %v", i, e.ID, err)
		}
		if got := DigestFiles(e.Files); got != e.Digest {
			return fmt.Errorf("skills[%d] (%s): the file list does not match the digest", i, e.ID)
		}
		if e.Image != nil && (e.Image.Ref == "" || !ValidDigest(e.Image.Digest)) {
			return fmt.Errorf("skills[%d] (%s): image needs a ref and a digest sha256:<64 hex digits>", i, e.ID)
		}
		if err := validEnvironment(e.Environment); err != nil {
			return fmt.Errorf("skills[%d] (%s): %v", i, e.ID, err)
		}
	}
	keys := map[string]bool{}
	for i, p := range s.Publishers {
		k, err := p.PublicKey()
		if err != nil {
			return fmt.Errorf("publishers[%d] (%s): %v", i, p.Name, err)
		}
		if p.KeyID != KeyID(k.ID()) {
			return fmt.Errorf("publishers[%d] (%s): key_id %s does not match the key (%s)", i, p.Name, p.KeyID, KeyID(k.ID()))
		}
		if keys[p.KeyID] {
			return fmt.Errorf("publishers[%d]: key %s is listed twice", i, p.KeyID)
		}
		keys[p.KeyID] = true
	}
	return nil
}

func validFiles(files []File) error {
	for i, f := range files {
		if f.Path == "" || strings.HasPrefix(f.Path, "/") || slices.Contains(strings.Split(f.Path, "/"), "..") {
			return fmt.Errorf("files[%d]: bad path %q", i, f.Path)
		}
		if i > 0 && files[i-1].Path >= f.Path {
			return fmt.Errorf("files[%d]: %q is out of order or repeated", i, f.Path)
		}
		switch f.Kind {
		case "d", "l":
		case "f", "x":
			if len(f.SHA256) != 64 {
				return fmt.Errorf("files[%d] (%s): bad sha256", i, f.Path)
			}
		default:
			return fmt.Errorf("files[%d] (%s): unknown kind %q", i, f.Path, f.Kind)
		}
	}
	return nil
}

// Path is the file the store was read from.
func (s *Store) Path() string { return s.path }

// Lookup returns the entry for id.
func (s *Store) Lookup(id string) (Entry, bool) {
	for _, e := range s.Skills {
		if e.ID == id {
			return e, true
		}
	}
	return Entry{}, false
}

// Trust records sk (replacing an entry with the same id) with its current
// file list; the file list must have the skill's digest (so the store pins
// what the caller showed the operator). A skill whose id is not a valid id
// (one named by a path whose folder names are not) is refused: Open would
// refuse the store holding it.
func (s *Store) Trust(sk *skill.Skill, now time.Time) (Entry, error) {
	if !skill.ValidID(sk.ID) {
		// Open refuses a store holding such an id.
		return Entry{}, errdefs.New(errdefs.Invalid, "skill folder %s cannot be trusted: %q is not a skill id (category/name of letters, digits, _ . -, taken from the names of the folder and the one holding it), and the trust store records skills by id; rename the folders", sk.Dir, sk.ID)
	}
	entries, err := skill.Files(sk.Dir)
	if err != nil {
		return Entry{}, err
	}
	files := FilesOf(entries)
	if d := DigestFiles(files); d != sk.Digest {
		return Entry{}, errdefs.New(errdefs.Invalid, "skill %s changed while it was being trusted (digest %s, now %s); look at it again", sk.ID, sk.Digest, d)
	}
	e := Entry{ID: sk.ID, Version: sk.Bundle.Manifest.Version, Path: sk.Dir, Digest: sk.Digest, Files: files, TrustedAt: now.UTC()}
	s.Remove(sk.ID)
	s.Skills = append(s.Skills, e)
	slices.SortFunc(s.Skills, func(a, b Entry) int { return strings.Compare(a.ID, b.ID) })
	return e, nil
}

// PinImage records the image the entry of id runs (after Trust, in the
// same Update); nil records none.
func (s *Store) PinImage(id string, pin *ImagePin) error {
	for i := range s.Skills {
		if s.Skills[i].ID == id {
			if pin != nil && (pin.Ref == "" || !ValidDigest(pin.Digest)) {
				return errdefs.New(errdefs.Invalid, "image pin of %s: want a ref and a digest sha256:<64 hex digits>", id)
			}
			s.Skills[i].Image = pin
			return nil
		}
	}
	return errdefs.New(errdefs.NotFound, "%s is not in the trust store", id)
}

// validEnvironment checks a recorded set: "name==version" entries, with
// an optional " sha256=HEX", sorted, none twice.
func validEnvironment(set []string) error {
	for i, x := range set {
		nv, _, _ := strings.Cut(x, " ")
		if name, ver, ok := strings.Cut(nv, "=="); !ok || name == "" || ver == "" {
			return fmt.Errorf("environment[%d]: %q is not name==version [sha256=HEX]", i, x)
		}
		if i > 0 && set[i-1] >= x {
			return fmt.Errorf("environment[%d]: %q is out of order or repeated", i, x)
		}
	}
	return nil
}

// PinEnvironment records the resolved set of the environment of the entry
// of id (after Trust, in the same Update); nil records none.
func (s *Store) PinEnvironment(id string, set []string) error {
	set = slices.Sorted(slices.Values(set))
	if err := validEnvironment(set); err != nil {
		return errdefs.New(errdefs.Invalid, "environment of %s: %v", id, err)
	}
	if len(set) == 0 {
		set = nil
	}
	for i := range s.Skills {
		if s.Skills[i].ID == id {
			s.Skills[i].Environment = set
			return nil
		}
	}
	return errdefs.New(errdefs.NotFound, "%s is not in the trust store", id)
}

// TrustedEnvironment implements policy.EnvironmentPins: the resolved set
// the store entry that trusts sk (its digest matches) recorded, if any.
func (s *Store) TrustedEnvironment(sk *skill.Skill) ([]string, bool) {
	e, ok := s.Lookup(sk.ID)
	if !ok || !e.Matches(sk.Digest) || len(e.Environment) == 0 {
		return nil, false
	}
	return slices.Clone(e.Environment), true
}

// TrustedImage implements policy.ImagePins: the image digest the store
// entry that trusts sk (its digest matches) pinned, if any.
func (s *Store) TrustedImage(sk *skill.Skill) (string, bool) {
	e, ok := s.Lookup(sk.ID)
	if !ok || !e.Matches(sk.Digest) || e.Image == nil {
		return "", false
	}
	return e.Image.Digest, true
}

// Matches reports whether e pins a bundle whose digest is digest. An entry
// made before bundle digests left out the signature file (its file list
// holds SignatureFile) pins the same content under its old digest: it
// matches the digest of its files without the signature, so that signing a
// trusted skill, or upgrading skillbox, does not untrust it.
func (e Entry) Matches(digest string) bool {
	if e.Digest == digest {
		return true
	}
	if !slices.ContainsFunc(e.Files, isSignatureEntry) {
		return false
	}
	return signedDigest(e.Files) == digest
}

// Changes lists how the bundle files now differ from e's. The signature
// file an old entry lists is not compared: bundles no longer include it.
func (e Entry) Changes(now []File) Changes {
	return Diff(slices.DeleteFunc(slices.Clone(e.Files), isSignatureEntry), now)
}

// isSignatureEntry reports whether f is a bundle's signature, which bundle
// digests leave out (skill.Files).
func isSignatureEntry(f File) bool {
	return f.Path == SignatureFile && (f.Kind == "f" || f.Kind == "x")
}

// Remove deletes the entry for id and reports whether there was one.
func (s *Store) Remove(id string) bool {
	n := len(s.Skills)
	s.Skills = slices.DeleteFunc(s.Skills, func(e Entry) bool { return e.ID == id })
	return len(s.Skills) != n
}

// AddPublisher trusts key under name (replacing a publisher with the same key).
func (s *Store) AddPublisher(name string, key minisign.PublicKey, now time.Time) Publisher {
	p := Publisher{Name: name, KeyID: KeyID(key.ID()), Key: key.String(), AddedAt: now.UTC()}
	s.Publishers = slices.DeleteFunc(s.Publishers, func(x Publisher) bool { return x.KeyID == p.KeyID })
	s.Publishers = append(s.Publishers, p)
	return p
}

// RemovePublisher deletes the publishers whose key id or name is ref and
// returns them.
func (s *Store) RemovePublisher(ref string) []Publisher {
	var gone []Publisher
	s.Publishers = slices.DeleteFunc(s.Publishers, func(p Publisher) bool {
		if strings.EqualFold(p.KeyID, ref) || p.Name == ref {
			gone = append(gone, p)
			return true
		}
		return false
	})
	return gone
}

// PublicKey decodes p's key.
func (p Publisher) PublicKey() (minisign.PublicKey, error) {
	var k minisign.PublicKey
	if err := k.UnmarshalText([]byte(p.Key)); err != nil {
		return k, err
	}
	return k, nil
}

// Keys returns the trusted publisher keys.
func (s *Store) Keys() []minisign.PublicKey {
	var keys []minisign.PublicKey
	for _, p := range s.Publishers {
		if k, err := p.PublicKey(); err == nil { // validated on Open
			keys = append(keys, k)
		}
	}
	return keys
}

// KeyID formats a minisign key id as minisign prints it.
func KeyID(id uint64) string { return fmt.Sprintf("%016X", id) }

// Save writes the store atomically (a temporary file in the same folder,
// fsynced, then renamed) with mode 0600, creating the folder with 0700. It
// refuses (errdefs.Invalid), writing nothing, a store that Open would not
// read back (see readsBack).
func (s *Store) Save() error {
	if s.path == "" {
		return noPath()
	}
	s.Version = storeVersion
	if s.Skills == nil {
		s.Skills = []Entry{}
	}
	if s.Publishers == nil {
		s.Publishers = []Publisher{}
	}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return errdefs.Wrap(errdefs.Internal, err, "trust store")
	}
	if err := readsBack(data); err != nil {
		return errdefs.New(errdefs.Invalid, "trust store %s not changed: what would be written would not read back: %v", s.path, err)
	}
	return WriteFileAtomic(s.path, append(data, '\n'), 0o600)
}

// readsBack checks that data, a store about to be written, is one that
// Open accepts. JSON writes bytes that are not UTF-8 as U+FFFD, so a
// string can come back other than it went in; a store Open refuses
// refuses every external skill and every publisher until it is mended by
// hand, so Save refuses to write one instead.
func readsBack(data []byte) error {
	var back Store
	if err := strictjson.Decode(data, &back); err != nil {
		return err
	}
	return back.validate()
}

// WriteFileAtomic replaces path with data atomically (see
// internal/atomicfile), as errdefs.Internal on failure.
func WriteFileAtomic(path string, data []byte, perm fs.FileMode) error {
	if err := atomicfile.WriteFile(path, data, perm); err != nil {
		return errdefs.Wrap(errdefs.Internal, err, "write "+path)
	}
	return nil
}

// Trusted implements policy.Trust: a store entry with the skill's digest
// trusts it; otherwise a valid signature by a trusted publisher does. A
// store entry whose digest no longer matches is a denial listing what
// changed (unless a trusted publisher signed the new content).
func (s *Store) Trusted(sk *skill.Skill) (string, error) {
	e, pinned := s.Lookup(sk.ID)
	if pinned && e.Matches(sk.Digest) {
		return fmt.Sprintf("trust store entry of %s", e.TrustedAt.Format(time.RFC3339)), nil
	}
	if len(s.Publishers) > 0 && HasSignature(sk.Dir) {
		entries, err := skill.Files(sk.Dir)
		if err != nil {
			return "", err
		}
		files := FilesOf(entries)
		if DigestFiles(files) != sk.Digest {
			return "", &errdefs.DeniedError{Permission: "trust", Reason: fmt.Sprintf("skill %s changed while it was being checked; run it again once it stops changing", sk.ID)}
		}
		v, err := verifyFiles(sk.Dir, sk.ID, files, s.Keys())
		if err == nil {
			return fmt.Sprintf("signed by trusted publisher %s (key %s)", s.publisherName(v.KeyID), v.KeyID), nil
		}
		var other *OtherSkillError
		if errors.As(err, &other) {
			return "", s.otherSkillDenial(sk, other)
		}
		var unknown *UnknownKeyError
		if !errors.As(err, &unknown) {
			return "", &errdefs.DeniedError{
				Permission: "trust",
				Reason:     fmt.Sprintf("skill %s is signed, but %v", sk.ID, err),
				Grant:      "a bundle whose signature verifies (re-download it from its publisher)",
			}
		}
	}
	if pinned {
		return "", changedError(sk, e)
	}
	return "", policy.ErrNotTrusted
}

// otherSkillDenial refuses sk, whose files a trusted publisher signed as
// another skill: the publisher vouched for them under that id (and the
// grants a policy file gives it), not under sk's.
func (s *Store) otherSkillDenial(sk *skill.Skill, e *OtherSkillError) error {
	return &errdefs.DeniedError{
		Permission: "trust",
		Reason: fmt.Sprintf("skill %s is signed by trusted publisher %s (key %s) as skill %s, not %s: the publisher signed these files as another skill, and a signature vouches for a bundle only under the id it was signed as",
			sk.ID, s.publisherName(e.KeyID), e.KeyID, e.Signed, sk.ID),
		Grant: fmt.Sprintf("a signature its publisher made for %s, or 'skillbox trust %s' after reviewing it, or --trust-remote-code for this call", sk.ID, shellquote.Word(sk.Ref())),
	}
}

func (s *Store) publisherName(keyID string) string {
	for _, p := range s.Publishers {
		if p.KeyID == keyID {
			return p.Name
		}
	}
	return "?"
}

// changedError describes how sk differs from the pinned entry e.
func changedError(sk *skill.Skill, e Entry) error {
	reason := fmt.Sprintf("skill %s changed since it was trusted on %s (digest %s, now %s)", sk.ID, e.TrustedAt.Format(time.RFC3339), short(e.Digest), short(sk.Digest))
	if entries, err := skill.Files(sk.Dir); err == nil {
		if d := e.Changes(FilesOf(entries)); !d.Empty() {
			reason += ": " + d.String()
		}
	}
	return &errdefs.DeniedError{
		Permission: "trust",
		Reason:     reason,
		Grant:      fmt.Sprintf("'skillbox trust %s' after reviewing the changes, or --trust-remote-code for this call", shellquote.Word(sk.Ref())),
	}
}

func short(d string) string {
	if len(d) > len("sha256:")+12 {
		return d[:len("sha256:")+12]
	}
	return d
}
