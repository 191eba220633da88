package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/internal/lockfile"
	"github.com/skillbox-dev/skillbox/internal/trust"
)

// A signature does not change what it signs: a skill trusted and locked
// before it was signed still runs, trusted and --locked, and sign, verify
// and inspect all show the same digest.
func TestSignKeepsTrustAndLock(t *testing.T) {
	h := newHarness(t)
	ext := h.external()
	keys := filepath.Join(t.TempDir(), "acme")
	if o := h.run("keygen", "--out", keys); o.code != 0 {
		t.Fatalf("keygen: %d %s", o.code, o.stderr)
	}
	if o := h.run("trust", "test/echo", "--yes"); o.code != 0 {
		t.Fatalf("trust: %d %s %s", o.code, o.stdout, o.stderr)
	}
	if o := h.run("lock", "test/echo"); o.code != 0 {
		t.Fatalf("lock: %d %s %s", o.code, o.stdout, o.stderr)
	}
	digest := h.run("inspect", "test/echo", "--json").envelope(t)["digest"]

	o := h.run("sign", "test/echo", "--key", keys+".key", "--json")
	if o.code != 0 {
		t.Fatalf("sign: %d %s %s", o.code, o.stdout, o.stderr)
	}
	if _, err := os.Stat(filepath.Join(ext, "test", "echo", trust.SignatureFile)); err != nil {
		t.Fatalf("no signature in the bundle: %v", err)
	}
	signed := o.envelope(t)["signed_digest"]
	inspected := h.run("inspect", "test/echo", "--json").envelope(t)["digest"]
	verified := h.run("verify", "test/echo", "--pubkey", keys+".pub", "--json").envelope(t)["signed_digest"]
	if signed != digest || inspected != digest || verified != digest {
		t.Errorf("digests disagree: before signing %v, signed %v, inspect %v, verify %v", digest, signed, inspected, verified)
	}
	// No publisher is trusted: the trust store's pin is what lets it run.
	if o := h.run("run", "test/echo", "--backend", "process", "--json"); o.code != 0 {
		t.Errorf("trusted skill refused after signing: %d %s", o.code, o.stdout)
	}
	if o := h.run("run", "test/echo", "--backend", "process", "--locked", "--json"); o.code != 0 {
		t.Errorf("locked skill refused after signing: %d %s", o.code, o.stdout)
	}
}

// A lockfile written when bundle digests still included skill.minisig pins
// a signed skill by that older digest: a --locked run of the same files
// runs, and says how to record the current digest (a command that works,
// keeping the locked limits).
func TestLockedLegacySignedDigest(t *testing.T) {
	h := newHarness(t)
	h.signAndLock(t)
	dir := filepath.Join(h.project, "skills", "test", "echo")
	legacy, ok, err := trust.LegacyDigest(dir)
	if err != nil || !ok {
		t.Fatalf("LegacyDigest: %v %v", ok, err)
	}
	lock, err := lockfile.Load(filepath.Join(h.project, lockfile.Name))
	if err != nil {
		t.Fatal(err)
	}
	e := lock.Skills["test/echo"]
	now := e.Digest
	e.Digest = legacy
	lock.Skills["test/echo"] = e
	if err := lock.Save(); err != nil {
		t.Fatal(err)
	}
	o := h.run("run", "test/echo", "--backend", "process", "--locked", "--json")
	want := "'skillbox lock test/echo --timeout 5s' records its digest " + now
	// The warning is the call's: in the envelope's warnings under --json.
	if o.code != 0 || !strings.Contains(o.stdout, want) || o.stderr != "" {
		t.Fatalf("legacy lock entry: exit %d\nstdout %s\nstderr %s\nwant %q in the warnings", o.code, o.stdout, o.stderr, want)
	}
	if o := h.run("lock", "test/echo", "--timeout", "5s"); o.code != 0 {
		t.Fatalf("the suggested lock: %d %s", o.code, o.stderr)
	}
	if o := h.run("run", "test/echo", "--backend", "process", "--locked", "--json"); o.code != 0 || o.stderr != "" {
		t.Errorf("after re-locking: exit %d, stderr %q", o.code, o.stderr)
	}
	// Other files changed: still drift.
	lock, _ = lockfile.Load(filepath.Join(h.project, lockfile.Name))
	e = lock.Skills["test/echo"]
	e.Digest = legacy
	lock.Skills["test/echo"] = e
	lock.Save()
	os.WriteFile(filepath.Join(dir, "new.txt"), []byte("x"), 0o644)
	if o := h.run("run", "test/echo", "--backend", "process", "--locked", "--json"); o.code != 3 || !strings.Contains(o.stdout, "lockfile digest") {
		t.Errorf("legacy entry, changed files: %d %s", o.code, o.stdout)
	}
}

// sign refuses to write into skillbox's cache (where bundled skills are
// extracted), by id or by path, and says how to sign a copy instead.
func TestSignRefusesTheBundledCache(t *testing.T) {
	h := newHarness(t)
	keys := filepath.Join(t.TempDir(), "acme")
	if o := h.run("keygen", "--out", keys); o.code != 0 {
		t.Fatalf("keygen: %d %s", o.code, o.stderr)
	}
	var info map[string]any
	json.Unmarshal([]byte(h.run("inspect", "text/word_stats", "--json").stdout), &info)
	dir, _ := info["path"].(string)
	if info["tier"] != "bundled" || dir == "" {
		t.Fatalf("inspect text/word_stats: %v", info)
	}
	for _, ref := range []string{"text/word_stats", dir} {
		o := h.run("sign", ref, "--key", keys+".key", "--json")
		msg := errMessage(t, o)
		if o.code != 2 || !strings.Contains(msg, "cache") || !strings.Contains(msg, "cp -R "+dir+" text/ && skillbox sign ./text/word_stats --key "+keys+".key") {
			t.Errorf("sign %s: exit %d %s", ref, o.code, o.stdout)
		}
		if _, err := os.Lstat(filepath.Join(dir, trust.SignatureFile)); err == nil {
			t.Fatalf("sign %s wrote into the cache", ref)
		}
	}
	// The suggested commands work as printed.
	if err := os.MkdirAll("text", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(filepath.Join("text", "word_stats"), os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	if o := h.run("sign", "./text/word_stats", "--key", keys+".key"); o.code != 0 {
		t.Errorf("sign the copy: %d %s", o.code, o.stderr)
	}
	if o := h.run("verify", "./text/word_stats", "--pubkey", keys+".pub"); o.code != 0 {
		t.Errorf("verify the copy: %d %s %s", o.code, o.stdout, o.stderr)
	}
}

// signAndLock makes a publisher key, signs test/echo with it and locks
// test/echo with a 5s timeout: a signed, locked skill.
func (h *harness) signAndLock(t *testing.T) {
	t.Helper()
	keys := filepath.Join(t.TempDir(), "acme")
	if o := h.run("keygen", "--out", keys); o.code != 0 {
		t.Fatalf("keygen: %d %s", o.code, o.stderr)
	}
	if o := h.run("sign", "test/echo", "--key", keys+".key"); o.code != 0 {
		t.Fatalf("sign: %d %s %s", o.code, o.stdout, o.stderr)
	}
	if o := h.run("lock", "test/echo", "--timeout", "5s"); o.code != 0 {
		t.Fatalf("lock: %d %s %s", o.code, o.stdout, o.stderr)
	}
}

// A publisher's signature vouches for its files under the id it was made
// for only: the same signed files copied under another id are refused at
// the trust gate (naming both ids), by verify, and flagged by inspect and
// the trust review, while the skill it was made for still runs.
func TestSignatureIsForItsID(t *testing.T) {
	h := newHarness(t)
	ext := h.external()
	keys := filepath.Join(t.TempDir(), "acme")
	if o := h.run("keygen", "--out", keys); o.code != 0 {
		t.Fatalf("keygen: %d %s", o.code, o.stderr)
	}
	if o := h.run("sign", "test/echo", "--key", keys+".key"); o.code != 0 {
		t.Fatalf("sign: %d %s %s", o.code, o.stdout, o.stderr)
	}
	if o := h.run("trust", "--publisher", keys+".pub", "--name", "acme", "--yes"); o.code != 0 {
		t.Fatalf("trust --publisher: %d %s", o.code, o.stderr)
	}
	if err := os.CopyFS(filepath.Join(ext, "crypto", "wallet_check"), os.DirFS(filepath.Join(ext, "test", "echo"))); err != nil {
		t.Fatal(err)
	}
	if o := h.run("run", "test/echo", "--backend", "process", "--json"); o.code != 0 {
		t.Fatalf("the skill it was signed for: %d %s", o.code, o.stdout)
	}
	o := h.run("run", "crypto/wallet_check", "--backend", "process", "--json")
	for _, want := range []string{"signed by trusted publisher acme", "as skill test/echo, not crypto/wallet_check", "signed these files as another skill", "'skillbox trust crypto/wallet_check'"} {
		if o.code != 3 || !strings.Contains(o.stdout, want) {
			t.Errorf("the copy under another id: exit %d, want 3 and %q in %s", o.code, want, o.stdout)
		}
	}
	o = h.run("verify", "crypto/wallet_check", "--json")
	if o.code != 3 || !strings.Contains(o.stdout, "is for skill test/echo, not crypto/wallet_check") {
		t.Errorf("verify of the copy: exit %d %s", o.code, o.stdout)
	}
	if o := h.run("verify", "test/echo", "--json"); o.code != 0 {
		t.Errorf("verify of the skill it was signed for: exit %d %s", o.code, o.stdout)
	}
	warned := "skill.minisig was made for skill test/echo, not crypto/wallet_check"
	if o := h.run("inspect", "crypto/wallet_check", "--json"); o.code != 0 || !strings.Contains(o.stdout, warned) {
		t.Errorf("inspect of the copy does not say so: exit %d %s", o.code, o.stdout)
	}
	if o := h.run("inspect", "test/echo", "--json"); strings.Contains(o.stdout, "was made for skill") {
		t.Errorf("inspect warns about a signature made for its own id: %s", o.stdout)
	}
	o = h.run("trust", "crypto/wallet_check")
	if !strings.Contains(o.stdout, "signed: as another skill, test/echo") || !strings.Contains(o.stderr, warned) {
		t.Errorf("the trust review does not say so: %s %s", o.stdout, o.stderr)
	}
}
