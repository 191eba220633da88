package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"aead.dev/minisign"

	"github.com/skillbox-dev/skillbox/audit"
	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/shellquote"
	"github.com/skillbox-dev/skillbox/internal/trust"
	"github.com/skillbox-dev/skillbox/skill"
)

// KeyPasswordEnv holds the password of an encrypted secret key, for scripts.
const KeyPasswordEnv = "SKILLBOX_KEY_PASSWORD"

// password reads --password-file, else $SKILLBOX_KEY_PASSWORD.
func (c *cmdContext) password(file string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", errdefs.New(errdefs.Invalid, "--password-file: %v", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return c.env.Getenv(KeyPasswordEnv), nil
}

func cmdKeygen(ctx context.Context, c *cmdContext, args []string) error {
	fs := newFlags(c, "keygen", "--out PREFIX [--password-file FILE] [--force]")
	out := fs.String("out", "", "write the secret key to `PREFIX`.key (0600) and the public key to PREFIX.pub")
	pwFile := fs.String("password-file", "", "encrypt the secret key with the password in `FILE` (scrypt; takes seconds and 1 GiB)")
	force := fs.Bool("force", false, "overwrite existing key files")
	fs.Bool("json", false, "print errors as JSON")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 0, "no arguments"); err != nil {
		return err
	}
	if *out == "" {
		return errdefs.New(errdefs.Invalid, "--out PREFIX is required")
	}
	secPath, pubPath := *out+".key", *out+".pub"
	if !*force {
		for _, p := range []string{secPath, pubPath} {
			if _, err := os.Lstat(p); err == nil {
				return errdefs.New(errdefs.Invalid, "%s exists; pass --force to overwrite it", p)
			}
		}
	}
	pub, sec, err := trust.GenerateKey()
	if err != nil {
		return errdefs.Wrap(errdefs.Internal, err, "generate key")
	}
	var secText []byte
	if *pwFile != "" {
		pw, err := c.password(*pwFile)
		if err != nil {
			return err
		}
		if pw == "" {
			return errdefs.New(errdefs.Invalid, "--password-file %s is empty", *pwFile)
		}
		if secText, err = minisign.EncryptKey(pw, sec); err != nil {
			return errdefs.Wrap(errdefs.Internal, err, "encrypt key")
		}
	} else {
		secText, _ = sec.MarshalText()
		fmt.Fprintf(c.stderr, "skillbox: warning: %s is not encrypted; keep it private (or use --password-file)\n", secPath)
	}
	pubText, _ := pub.MarshalText()
	if err := trust.WriteFileAtomic(secPath, append(secText, '\n'), 0o600); err != nil {
		return err
	}
	if err := trust.WriteFileAtomic(pubPath, append(pubText, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "Key %s: secret key %s, public key %s\n", trust.KeyID(pub.ID()), secPath, pubPath)
	return nil
}

func cmdSign(ctx context.Context, c *cmdContext, args []string) error {
	fs := newFlags(c, "sign", "SKILL --key FILE [--password-file FILE]")
	keyFile := fs.String("key", "", "minisign secret key `FILE`")
	pwFile := fs.String("password-file", "", "password of an encrypted key in `FILE` (else $"+KeyPasswordEnv+")")
	jsonOut := fs.Bool("json", false, "print JSON")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 1, "one SKILL"); err != nil {
		return err
	}
	if *keyFile == "" {
		return errdefs.New(errdefs.Invalid, "--key FILE is required")
	}
	pw, err := c.password(*pwFile)
	if err != nil {
		return err
	}
	key, err := trust.ReadPrivateKey(*keyFile, pw)
	if err != nil {
		return err
	}
	s, closeRT, err := c.resolve(pos[0])
	if err != nil {
		return err
	}
	defer closeRT()
	rec := audit.Record{Event: audit.EventSign, Skill: s.ID, Version: s.Bundle.Manifest.Version, Tier: string(s.Tier), Key: trust.KeyID(key.ID()), Detail: s.Dir}
	digest, err := "", c.signable(s, *keyFile)
	if err == nil {
		digest, err = trust.Sign(s, key)
	}
	rec.Digest = digest
	if err != nil {
		rec.Outcome, rec.ErrorKind, rec.Error = "error", string(errdefs.KindOf(err)), err.Error()
		c.record(rec)
		return err
	}
	if err := c.record(rec); err != nil {
		return err
	}
	if *jsonOut {
		return writeJSON(c.stdout, map[string]any{"ok": true, "skill": s.ID, "signed_digest": digest, "key_id": rec.Key, "signature": s.Dir + "/" + trust.SignatureFile}, false)
	}
	fmt.Fprintf(c.stdout, "Signed %s (%s) with key %s: %s/%s\n", s.ID, digest, rec.Key, s.Dir, trust.SignatureFile)
	return nil
}

// signable refuses to sign a skill whose folder is skillbox's own cache: a
// bundled skill (extracted there from the skillbox binary) or a path into
// the cache. Signing writes the signature into the folder; the cache is
// rewritten by skillbox, and a bundled skill runs without trust anyway. The
// error says how to sign a copy instead.
func (c *cmdContext) signable(s *skill.Skill, keyFile string) error {
	cache, err := c.cacheDir()
	if err != nil {
		return err
	}
	if s.Tier != skill.TierBundled && !inside(cache, s.Dir) {
		return nil
	}
	name := filepath.Base(s.Dir)
	category := filepath.Base(filepath.Dir(s.Dir))
	return errdefs.New(errdefs.Invalid,
		"%s is in skillbox's cache (%s), which skillbox rewrites: sign writes %s into the skill's folder, so sign a copy of it instead: 'mkdir -p %s && cp -R %s %s/ && skillbox sign %s --key %s' (a bundled skill runs without trust, so only a copy you publish needs a signature)",
		s.ID, s.Dir, trust.SignatureFile, shellquote.Word(category), shellquote.Word(s.Dir), shellquote.Word(category),
		shellquote.Word("./"+category+"/"+name), shellquote.Word(keyFile))
}

// inside reports whether path is dir or under it, after resolving symlinks
// in both (a cache reached through a link is still the cache).
func inside(dir, path string) bool {
	if d, err := filepath.EvalSymlinks(dir); err == nil {
		dir = d
	}
	if p, err := filepath.EvalSymlinks(path); err == nil {
		path = p
	}
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

func cmdVerify(ctx context.Context, c *cmdContext, args []string) error {
	fs := newFlags(c, "verify", "SKILL [--pubkey FILE]")
	pubFile := fs.String("pubkey", "", "verify with the minisign public key in `FILE` (default: the trusted publishers)")
	jsonOut := fs.Bool("json", false, "print JSON")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 1, "one SKILL"); err != nil {
		return err
	}
	var keys []minisign.PublicKey
	if *pubFile != "" {
		k, err := trust.ReadPublicKey(*pubFile)
		if err != nil {
			return err
		}
		keys = append(keys, k)
	} else {
		store, err := trust.Open(c.trustStorePath())
		if err != nil {
			return err
		}
		keys = store.Keys()
	}
	s, closeRT, err := c.resolve(pos[0])
	if err != nil {
		return err
	}
	defer closeRT()
	v, err := trust.Verify(s, keys)
	rec := audit.Record{Event: audit.EventVerify, Skill: s.ID, Version: s.Bundle.Manifest.Version, Digest: s.Digest, Tier: string(s.Tier)}
	if err != nil {
		var unknown *trust.UnknownKeyError
		var other *trust.OtherSkillError
		switch {
		case errors.As(err, &unknown):
			rec.Key = unknown.KeyID
			hint := "'skillbox trust --publisher KEYFILE' (the publisher's public key)"
			if *pubFile != "" {
				hint = "--pubkey naming the public key that made the signature"
			}
			err = &errdefs.DeniedError{Permission: "signature", Reason: fmt.Sprintf("skill %s: %v", s.ID, unknown), Grant: hint}
		case errors.As(err, &other):
			rec.Key = other.KeyID
			err = &errdefs.DeniedError{Permission: "signature", Reason: fmt.Sprintf("skill %s: %v", s.ID, other),
				Grant: fmt.Sprintf("a signature its publisher made for %s (this one is good for %s only)", s.ID, other.Signed)}
		}
		rec.Outcome, rec.ErrorKind, rec.Error = "error", string(errdefs.KindOf(err)), err.Error()
		c.record(rec)
		return err
	}
	rec.Key = v.KeyID
	if err := c.record(rec); err != nil {
		return err
	}
	if *jsonOut {
		return writeJSON(c.stdout, map[string]any{"ok": true, "skill": s.ID, "key_id": v.KeyID, "signed_digest": v.Digest, "comment": v.Comment}, false)
	}
	fmt.Fprintf(c.stdout, "Good signature on %s by key %s (%s)\n", s.ID, v.KeyID, v.Comment)
	return nil
}

// signedAsWarning warns about a skill whose signature says it was made for
// another skill id (trust.SignedID; not verified here): the files were
// copied under another id, and the signature does not let them through the
// trust gate under this one. "" when there is no such signature.
func signedAsWarning(s *skill.Skill) string {
	id, ok := trust.SignedID(s.Dir)
	if !ok || id == s.ID {
		return ""
	}
	return fmt.Sprintf("%s was made for skill %s, not %s: its publisher signed these files as another skill, so the signature does not let %s through the trust gate", trust.SignatureFile, id, s.ID, s.ID)
}

// withSignatureWarning adds signedAsWarning to the warnings of s.
func withSignatureWarning(s *skill.Skill) {
	if w := signedAsWarning(s); w != "" {
		s.Warnings = append(slices.Clip(s.Warnings), w)
	}
}
