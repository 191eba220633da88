package trust

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"aead.dev/minisign"
	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/policy"
	"github.com/skillbox-dev/skillbox/skill"
)

// bundle writes a small skill folder and returns it resolved as external.
func bundle(t *testing.T) *skill.Skill {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "cat", "name")
	os.MkdirAll(filepath.Join(dir, "data"), 0o755)
	os.WriteFile(filepath.Join(dir, "manifest.yaml"), []byte("name: name\nversion: \"1.0\"\ndescription: d\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "skill.py"), []byte("from skillware.core.base_skill import BaseSkill\nclass S(BaseSkill):\n    def execute(self, p):\n        return {}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "data", "a.txt"), []byte("a"), 0o644)
	os.Symlink("data/a.txt", filepath.Join(dir, "link"))
	return reload(t, dir)
}

func reload(t *testing.T, dir string) *skill.Skill {
	t.Helper()
	s, err := (&skill.Resolver{}).Resolve(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Tier != skill.TierExternal {
		t.Fatalf("tier %s", s.Tier)
	}
	return s
}

func TestDigestFilesMatchesSkillDigest(t *testing.T) {
	s := bundle(t)
	os.Chmod(filepath.Join(s.Dir, "skill.py"), 0o755)
	entries, err := skill.Files(s.Dir)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := skill.Digest(s.Dir)
	if got := DigestFiles(FilesOf(entries)); got != want {
		t.Fatalf("DigestFiles = %s, skill.Digest = %s: the two implementations drifted", got, want)
	}
	if got, _ := SignedDigest(s.Dir); got != want {
		t.Errorf("an unsigned bundle's SignedDigest %s != Digest %s", got, want)
	}
}

func TestStoreRoundTripAndGate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cfg", "trust.json")
	st, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s := bundle(t)
	if _, err := st.Trusted(s); !errors.Is(err, policy.ErrNotTrusted) {
		t.Fatalf("empty store: %v", err)
	}
	if _, err := st.Trust(s, time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	if err := st.Save(); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("store mode %v, want 0600", fi.Mode().Perm())
	}
	st, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if how, err := st.Trusted(s); err != nil || !strings.Contains(how, "2025-01-02") {
		t.Fatalf("pinned: %q %v", how, err)
	}
	// Change the bundle: added, removed and modified files are listed.
	os.WriteFile(filepath.Join(s.Dir, "skill.py"), []byte("import os\n"), 0o644)
	os.Remove(filepath.Join(s.Dir, "data", "a.txt"))
	os.WriteFile(filepath.Join(s.Dir, "evil.py"), []byte("x"), 0o644)
	changed := reload(t, s.Dir)
	_, err = st.Trusted(changed)
	var d *errdefs.DeniedError
	if !errors.As(err, &d) {
		t.Fatalf("changed bundle: err = %v, want a denial", err)
	}
	for _, want := range []string{"added: evil.py", "removed: data/a.txt", "modified: skill.py", "skillbox trust"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("denial %q lacks %q", err, want)
		}
	}
	if !st.Remove(s.ID) || st.Remove(s.ID) {
		t.Error("Remove")
	}
}

func TestOpenRefusesBrokenStores(t *testing.T) {
	s := bundle(t)
	good := &Store{path: filepath.Join(t.TempDir(), "t.json")}
	good.Trust(s, time.Now())
	good.Save()
	goodData, _ := os.ReadFile(good.path)
	tests := []struct {
		name, data string
		mode       os.FileMode
		want       string
	}{
		{"truncated", `{"version": 1, "skills": [`, 0o600, "truncated"},
		{"syntax", "{\n\"version\": 1,,}", 0o600, "line 2"},
		{"unknown field", `{"version": 1, "skills": [], "publishers": [], "trust_all": true}`, 0o600, "unknown field"},
		{"wrong version", `{"version": 9, "skills": [], "publishers": []}`, 0o600, "unknown version 9"},
		{"empty", ``, 0o600, "empty file"},
		{"trailing", `{"version": 1, "skills": [], "publishers": []} {}`, 0o600, "trailing data"},
		{"bad digest", strings.Replace(string(goodData), "sha256:", "sha1:", 1), 0o600, "not sha256"},
		{"files do not match digest", strings.Replace(string(goodData), `"path": "data/a.txt"`, `"path": "data/b.txt"`, 1), 0o600, "does not match the digest"},
		{"world writable", string(goodData), 0o666, "other users may write it"},
		{"bad publisher key", `{"version": 1, "skills": [], "publishers": [{"name": "x", "key_id": "00", "key": "AAAA", "added_at": "2025-01-01T00:00:00Z"}]}`, 0o600, "publishers[0]"},
		{"wrong type", `{"version": "1"}`, 0o600, "version must be int"},
		// Read strictly: no member twice, names matched exactly.
		{"skill field twice", strings.Replace(string(goodData), `"version": "1.0",`, `"version": "1.0", "version": "2.0",`, 1), 0o600, `skills[0]: duplicate key "version"`},
		{"version twice", strings.Replace(string(goodData), `"version": 1,`, `"version": 1, "version": 1,`, 1), 0o600, `line 2: duplicate key "version"`},
		{"field in another case", strings.Replace(string(goodData), `"digest"`, `"Digest"`, 1), 0o600, `skills[0]: unknown field "Digest"`},
		{"publishers in another case", strings.Replace(string(goodData), `"publishers"`, `"Publishers"`, 1), 0o600, `unknown field "Publishers"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "trust.json")
			os.WriteFile(p, []byte(tt.data), tt.mode)
			os.Chmod(p, tt.mode)
			_, err := Open(p)
			if errdefs.KindOf(err) != errdefs.Invalid || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "nothing in it is trusted") {
				t.Errorf("err = %v; want invalid containing %q", err, tt.want)
			}
		})
	}
}

func keyPair(t *testing.T) (minisign.PublicKey, minisign.PrivateKey) {
	t.Helper()
	pub, priv, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func TestSignVerify(t *testing.T) {
	s := bundle(t)
	pub, priv := keyPair(t)
	other, _ := keyPair(t)
	before := s.Digest
	signed, err := Sign(s, priv)
	if err != nil {
		t.Fatal(err)
	}
	if signed != before {
		t.Errorf("signed digest %s != unsigned bundle digest %s", signed, before)
	}
	v, err := Verify(s, []minisign.PublicKey{other, pub})
	if err != nil || v.KeyID != KeyID(pub.ID()) || v.ID != "cat/name" || v.Digest != before || !strings.Contains(v.Comment, "id=cat/name") {
		t.Fatalf("Verify = %+v, %v", v, err)
	}
	var unknown *UnknownKeyError
	if _, err := Verify(s, []minisign.PublicKey{other}); !errors.As(err, &unknown) {
		t.Errorf("unknown key: %v", err)
	}
	// A trusted publisher lets the signed skill through the gate.
	st := &Store{path: filepath.Join(t.TempDir(), "t.json")}
	st.AddPublisher("acme", pub, time.Now())
	signedSkill := reload(t, s.Dir)
	if how, err := st.Trusted(signedSkill); err != nil || !strings.Contains(how, "acme") {
		t.Fatalf("signed by trusted publisher: %q %v", how, err)
	}
	// A signature by an untrusted key does not pass (and is not an error).
	st2 := &Store{}
	st2.AddPublisher("other", other, time.Now())
	if _, err := st2.Trusted(signedSkill); !errors.Is(err, policy.ErrNotTrusted) {
		t.Errorf("untrusted signer: %v", err)
	}
	// Tampering after signing is caught.
	os.WriteFile(filepath.Join(s.Dir, "data", "a.txt"), []byte("tampered"), 0o644)
	if _, err := Verify(s, []minisign.PublicKey{pub}); errdefs.KindOf(err) != errdefs.Denied || !strings.Contains(err.Error(), "changed after it was signed") {
		t.Errorf("tampered: %v", err)
	}
	if _, err := st.Trusted(reload(t, s.Dir)); errdefs.KindOf(err) != errdefs.Denied {
		t.Errorf("tampered skill through the gate: %v", err)
	}
}

func TestMalformedSignature(t *testing.T) {
	s := bundle(t)
	pub, _ := keyPair(t)
	sig := filepath.Join(s.Dir, SignatureFile)
	for name, data := range map[string]string{
		"garbage":      "hello",
		"not skillbox": string(minisign.SignWithComments(mustPriv(t), []byte("x"), "some file", "u")),
		"truncated":    "untrusted comment: x\nRWQ\n",
		"no id":        string(minisign.SignWithComments(mustPriv(t), []byte(s.Digest), "skillbox-skill version=1 digest="+s.Digest, "u")),
	} {
		os.WriteFile(sig, []byte(data), 0o644)
		if _, err := Verify(s, []minisign.PublicKey{pub}); errdefs.KindOf(err) != errdefs.Invalid {
			t.Errorf("%s: err = %v, want invalid", name, err)
		}
	}
	os.Remove(sig)
	if _, err := Verify(s, nil); errdefs.KindOf(err) != errdefs.NotFound {
		t.Errorf("no signature: %v", err)
	}
}

func mustPriv(t *testing.T) minisign.PrivateKey {
	_, p := keyPair(t)
	return p
}

func TestReadKeys(t *testing.T) {
	dir := t.TempDir()
	pub, priv := keyPair(t)
	pt, _ := pub.MarshalText()
	st, _ := priv.MarshalText()
	os.WriteFile(filepath.Join(dir, "k.pub"), pt, 0o644)
	os.WriteFile(filepath.Join(dir, "k.key"), st, 0o600)
	os.WriteFile(filepath.Join(dir, "bad"), []byte("nope"), 0o600)
	if k, err := ReadPublicKey(filepath.Join(dir, "k.pub")); err != nil || !k.Equal(pub) {
		t.Errorf("ReadPublicKey: %v", err)
	}
	if k, err := ReadPrivateKey(filepath.Join(dir, "k.key"), ""); err != nil || !k.Equal(priv) {
		t.Errorf("ReadPrivateKey: %v", err)
	}
	for _, f := range []func(string) error{
		func(p string) error { _, err := ReadPublicKey(p); return err },
		func(p string) error { _, err := ReadPrivateKey(p, ""); return err },
	} {
		if err := f(filepath.Join(dir, "bad")); errdefs.KindOf(err) != errdefs.Invalid {
			t.Errorf("bad key: %v", err)
		}
	}
}

func TestDiff(t *testing.T) {
	a := []File{{Path: "a", Kind: "f", SHA256: "1"}, {Path: "b", Kind: "f", SHA256: "2"}, {Path: "c", Kind: "l", Target: "a"}}
	b := []File{{Path: "a", Kind: "x", SHA256: "1"}, {Path: "c", Kind: "l", Target: "b"}, {Path: "d", Kind: "d"}}
	got := Diff(a, b).String()
	if got != "added: d; removed: b; modified: a, c" {
		t.Errorf("Diff = %q", got)
	}
}

// Signing does not change the bundle's digest, so a skill trusted before it
// was signed stays trusted, and the signed digest is the one inspect shows.
func TestSigningKeepsTheDigest(t *testing.T) {
	s := bundle(t)
	_, priv := keyPair(t)
	st := &Store{path: filepath.Join(t.TempDir(), "t.json")}
	if _, err := st.Trust(s, time.Now()); err != nil {
		t.Fatal(err)
	}
	signed, err := Sign(s, priv)
	if err != nil {
		t.Fatal(err)
	}
	after := reload(t, s.Dir)
	if after.Digest != s.Digest || signed != s.Digest {
		t.Fatalf("digest before %s, after signing %s, signed %s: want all equal", s.Digest, after.Digest, signed)
	}
	if _, err := st.Trusted(after); err != nil {
		t.Errorf("trusted skill refused after signing: %v", err)
	}
}

// An entry pinned when bundle digests still included skill.minisig (its
// file list holds it) keeps trusting the same files; changed files are
// still refused, and the diff does not list the signature.
func TestLegacySignedEntries(t *testing.T) {
	s := bundle(t)
	_, priv := keyPair(t)
	if _, err := Sign(s, priv); err != nil {
		t.Fatal(err)
	}
	legacy, ok, err := LegacyDigest(s.Dir)
	if err != nil || !ok || legacy == s.Digest {
		t.Fatalf("LegacyDigest = %s, %v, %v (digest %s)", legacy, ok, err, s.Digest)
	}
	entries, err := skill.Files(s.Dir)
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := os.ReadFile(filepath.Join(s.Dir, SignatureFile))
	sum := sha256.Sum256(sig)
	files := append(FilesOf(entries), File{Path: SignatureFile, Kind: "f", Size: int64(len(sig)), SHA256: hex.EncodeToString(sum[:])})
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	if DigestFiles(files) != legacy {
		t.Fatalf("LegacyDigest %s is not the digest of the files with the signature %s", legacy, DigestFiles(files))
	}
	st := &Store{Version: storeVersion, path: filepath.Join(t.TempDir(), "t.json")}
	st.Skills = []Entry{{ID: s.ID, Version: "1.0", Path: s.Dir, Digest: legacy, Files: files, TrustedAt: time.Now()}}
	if err := st.validate(); err != nil {
		t.Fatalf("a store written by an earlier version no longer validates: %v", err)
	}
	if how, err := st.Trusted(s); err != nil || !strings.Contains(how, "trust store entry") {
		t.Errorf("legacy entry of the same files: %q, %v", how, err)
	}
	os.WriteFile(filepath.Join(s.Dir, "data", "a.txt"), []byte("changed"), 0o644)
	_, err = st.Trusted(reload(t, s.Dir))
	if errdefs.KindOf(err) != errdefs.Denied || !strings.Contains(err.Error(), "modified: data/a.txt") || strings.Contains(err.Error(), SignatureFile) {
		t.Errorf("legacy entry, changed files: %v", err)
	}
	if _, ok, err := LegacyDigest(bundle(t).Dir); ok || err != nil {
		t.Errorf("LegacyDigest of an unsigned bundle: ok %v, %v", ok, err)
	}
}

// TestSaveWritesOnlyWhatOpenReads: an entry that would not read back as it
// was (JSON turns bytes that are not UTF-8 into U+FFFD, so its file list
// no longer hashes to its digest) is refused by Save, which leaves the
// file as it was: a store Open refuses would refuse every external skill.
func TestSaveWritesOnlyWhatOpenReads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trust.json")
	st, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s := bundle(t)
	if _, err := st.Trust(s, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := st.Save(); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	sum := sha256.Sum256([]byte("x"))
	files := []File{{Path: "data-\xff.txt", Kind: "f", Size: 1, SHA256: hex.EncodeToString(sum[:])}}
	st.Skills = append(st.Skills, Entry{ID: "cat/odd", Version: "1", Digest: DigestFiles(files), Files: files, TrustedAt: time.Now()})
	err = st.Save()
	if errdefs.KindOf(err) != errdefs.Invalid || !strings.Contains(err.Error(), "cat/odd") || !strings.Contains(err.Error(), "not changed") {
		t.Fatalf("Save: %v, want an invalid error naming cat/odd and saying the store is not changed", err)
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Errorf("the store was rewritten:\n%s", after)
	}
	reopened, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := reopened.Lookup(s.ID); !ok {
		t.Errorf("the valid entry %s is gone", s.ID)
	}
}

// TestTrustRefusesWhatIsNotAnID: a skill named by a path whose folders are
// not an id (`trust "./My Skills/tool"`) is refused; recorded, its entry
// made Open refuse the whole store.
func TestTrustRefusesWhatIsNotAnID(t *testing.T) {
	s := bundle(t)
	odd := filepath.Join(t.TempDir(), "My Skills", "tool")
	if err := os.MkdirAll(filepath.Dir(odd), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(s.Dir, odd); err != nil {
		t.Fatal(err)
	}
	s = reload(t, odd)
	st := &Store{path: filepath.Join(t.TempDir(), "t.json")}
	_, err := st.Trust(s, time.Now())
	if errdefs.KindOf(err) != errdefs.Invalid || !strings.Contains(err.Error(), `"My Skills/tool" is not a skill id`) || !strings.Contains(err.Error(), "rename") {
		t.Fatalf("Trust: %v, want an invalid error saying the id is not one", err)
	}
	if len(st.Skills) != 0 {
		t.Errorf("entries recorded: %+v", st.Skills)
	}
}

// A signature is for the skill id it was made as: the same signed files
// under another id do not verify, and do not pass the trust gate, with a
// denial naming both ids.
func TestSignatureIsForItsID(t *testing.T) {
	base := t.TempDir()
	orig := filepath.Join(base, "pub", "util", "echo")
	copied := filepath.Join(base, "ext", "crypto", "wallet_check")
	for _, dir := range []string{orig, copied} {
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "manifest.yaml"), []byte("name: echo\nversion: \"1\"\ndescription: d\n"), 0o644)
		os.WriteFile(filepath.Join(dir, "skill.py"), []byte("x = 1\n"), 0o644)
	}
	pub, priv := keyPair(t)
	signed := reload(t, orig)
	if _, err := Sign(signed, priv); err != nil {
		t.Fatal(err)
	}
	sig, err := os.ReadFile(filepath.Join(orig, SignatureFile))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(copied, SignatureFile), sig, 0o644)
	moved := reload(t, copied)
	if moved.Digest != signed.Digest || moved.ID != "crypto/wallet_check" {
		t.Fatalf("the copy: %s %s, want the digest %s", moved.ID, moved.Digest, signed.Digest)
	}
	if id, ok := SignedID(copied); !ok || id != "util/echo" {
		t.Errorf("SignedID = %q, %v; want util/echo", id, ok)
	}
	var other *OtherSkillError
	if _, err := Verify(moved, []minisign.PublicKey{pub}); !errors.As(err, &other) || errdefs.KindOf(err) != errdefs.Denied ||
		!strings.Contains(err.Error(), "is for skill util/echo, not crypto/wallet_check") {
		t.Errorf("Verify of the copy: %v", err)
	}
	st := &Store{}
	st.AddPublisher("acme", pub, time.Now())
	if how, err := st.Trusted(signed); err != nil || !strings.Contains(how, "acme") {
		t.Errorf("the skill it was signed as: %q %v", how, err)
	}
	_, err = st.Trusted(moved)
	var d *errdefs.DeniedError
	if !errors.As(err, &d) || d.Permission != "trust" {
		t.Fatalf("the copy through the gate: %v", err)
	}
	for _, want := range []string{"crypto/wallet_check is signed by trusted publisher acme", "as skill util/echo, not crypto/wallet_check", "signed these files as another skill", "skillbox trust " + copied} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("denial %q lacks %q", err, want)
		}
	}
}
