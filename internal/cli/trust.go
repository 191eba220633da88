package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/skillbox-dev/skillbox/audit"
	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/image"
	"github.com/skillbox-dev/skillbox/internal/secrets"
	"github.com/skillbox-dev/skillbox/internal/shellquote"
	"github.com/skillbox-dev/skillbox/internal/trust"
	"github.com/skillbox-dev/skillbox/policy"
	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/skill"
)

// policy loads the --policy file, or the default one if it exists.
func (c *cmdContext) policy() (*policy.Policy, error) {
	path, optional := c.policyPath, false
	if path == "" {
		path, optional = policy.DefaultPath(c.env.Getenv), true
	}
	pol, err := policy.Load(path, optional)
	if err != nil {
		return nil, err
	}
	if c.caFile != "" {
		abs, err := filepath.Abs(c.caFile)
		if err != nil {
			return nil, errdefs.New(errdefs.Invalid, "--ca-file %q: %v", c.caFile, err)
		}
		if err := pol.AddCAFile(abs); err != nil {
			return nil, errdefs.Wrap(errdefs.Invalid, err, "--ca-file")
		}
	}
	for _, arg := range c.backendSettings {
		name, s, err := sandbox.ParseSetting(arg)
		if err != nil {
			return nil, err
		}
		if pol.Backends == nil {
			pol.Backends = map[string]sandbox.Config{}
		}
		cfg := pol.Backends[name]
		cfg.Settings = slices.Clone(cfg.Settings)
		cfg.Set(s)
		pol.Backends[name] = cfg
	}
	return pol, nil
}

// registerBackendSettings adds --backend-setting to fs.
func (c *cmdContext) registerBackendSettings(fs *flagSet) {
	fs.Var(&c.backendSettings, "backend-setting", "set a backend's setting, `NAME.KEY=VALUE`, as under backends: in the policy file (overrides it; repeatable)")
}

// trustStorePath is where the trust store lives.
func (c *cmdContext) trustStorePath() string { return trust.DefaultPath(c.env.Getenv) }

// trustGate is the trust store as the runtime's policy.Trust, read again
// whenever the file changes, so that a running server sees trust and
// untrust from its next call. A store that cannot be read denies every
// external skill with its error (bundled and project skills, which need no
// trust, still run).
func (c *cmdContext) trustGate() policy.Trust { return trust.NewGate(c.trustStorePath()) }

// auditLog opens the audit log for the trust, sign and lock commands.
func (c *cmdContext) auditLog() (*audit.Log, error) {
	l, err := audit.Open(audit.DefaultPath(c.env.Getenv))
	if err != nil {
		return nil, errdefs.Wrap(errdefs.Internal, err, "open audit log")
	}
	return l, nil
}

// record writes an audit record for an operator decision; a failure to
// record is reported, since the decision was made without its trace.
func (c *cmdContext) record(rec audit.Record) error {
	l, err := c.auditLog()
	if err != nil {
		return err
	}
	defer l.Close()
	if rec.Outcome == "" {
		rec.Outcome = "ok"
	}
	if err := l.Write(rec); err != nil {
		return errdefs.Wrap(errdefs.Internal, err, "audit log")
	}
	return nil
}

// secretFlags are the run flags that say where variable values come from.
type secretFlags struct {
	envFiles   listFlag
	secretsDir string
}

func (s *secretFlags) register(fs *flagSet) {
	fs.Var(&s.envFiles, "env-file", "read granted variables' values from the dotenv `FILE` first (repeatable)")
	fs.StringVar(&s.secretsDir, "secrets-dir", "", "read granted variables' values from files named after them in `DIR`")
}

// provider chains the env files, the secrets folder and the host
// environment, in that order. Only granted names are ever looked up.
func (s *secretFlags) provider(c *cmdContext) (secrets.Provider, error) {
	var chain secrets.Chain
	for _, f := range s.envFiles {
		m, err := secrets.EnvFile(f)
		if err != nil {
			return nil, err
		}
		chain = append(chain, m)
	}
	if s.secretsDir != "" {
		fi, err := os.Stat(s.secretsDir)
		if err != nil || !fi.IsDir() {
			return nil, errdefs.New(errdefs.Invalid, "--secrets-dir %s: not a folder", s.secretsDir)
		}
		chain = append(chain, secrets.Dir(s.secretsDir))
	}
	return append(chain, secrets.Env(c.env.LookupEnv)), nil
}

// absPaths makes each path absolute (relative to the working directory).
func absPaths(paths []string, flagName string) ([]string, error) {
	out := make([]string, 0, len(paths))
	for _, p := range paths {
		if p == "" {
			return nil, errdefs.New(errdefs.Invalid, "%s: empty path", flagName)
		}
		a, err := filepath.Abs(p)
		if err != nil {
			return nil, errdefs.New(errdefs.Invalid, "%s %s: %v", flagName, p, err)
		}
		out = append(out, a)
	}
	return out, nil
}

// isTerminal reports whether r is an interactive terminal (Env.IsTerminal).
func (c *cmdContext) isTerminal(r io.Reader) bool {
	if c.env.IsTerminal != nil {
		return c.env.IsTerminal(r)
	}
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	return isatty(f) // not just a character device: /dev/null is one
}

// confirm asks question on a terminal. Without a terminal it refuses unless
// yes is set: a script must say --yes, never get a silent default.
func (c *cmdContext) confirm(question string, yes bool) (bool, error) {
	if yes {
		return true, nil
	}
	if !c.isTerminal(c.stdin) {
		return false, errdefs.New(errdefs.Invalid, "standard input is not a terminal, so skillbox cannot ask; review the above and pass --yes")
	}
	fmt.Fprintf(c.stderr, "%s [y/N] ", question)
	line, err := bufio.NewReader(c.stdin).ReadString('\n')
	if err != nil && line == "" {
		// No answer is not "no": the caller must not report success.
		return false, errdefs.New(errdefs.Invalid, "no answer: standard input ended before y or n, so nothing was changed; answer y or n, or pass --yes")
	}
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "y" || a == "yes", nil
}

// trustEnvelope is `trust --json` output.
type trustEnvelope struct {
	OK      bool              `json:"ok"`
	Action  string            `json:"action"` // "trusted", "declined", "unchanged", "publisher", "list"
	Skill   *trustSkill       `json:"skill,omitempty"`
	Changes *trustDiff        `json:"changes,omitempty"`
	Store   string            `json:"store"`
	Entries []trustSkill      `json:"skills,omitempty"`
	Keys    []trust.Publisher `json:"publishers,omitempty"`
	Note    string            `json:"note,omitempty"`
}

type trustSkill struct {
	ID        string    `json:"id"`
	Version   string    `json:"version"`
	Tier      string    `json:"tier,omitempty"`
	Path      string    `json:"path"`
	Digest    string    `json:"digest"`
	Requests  *requests `json:"requests,omitempty"`
	TrustedAt string    `json:"trusted_at,omitempty"`
	// Image is the image a container skill is trusted with.
	Image *trust.ImagePin `json:"image,omitempty"`
	// Environment is the resolved set of its environment that trusting
	// records ("name==version sha256=HEX").
	Environment []string `json:"environment,omitempty"`
}

type trustDiff struct {
	Added    []string `json:"added"`
	Removed  []string `json:"removed"`
	Modified []string `json:"modified"`
}

func cmdTrust(ctx context.Context, c *cmdContext, args []string) error {
	fs := newFlags(c, "trust", "SKILL [--yes] | --publisher PUBKEYFILE [--name NAME] | --list")
	yes := fs.Bool("yes", false, "do not ask (for scripts; review the requests first)")
	jsonOut := fs.Bool("json", false, "print JSON")
	pubFile := fs.String("publisher", "", "trust skills signed by the minisign public key in `FILE`")
	name := fs.String("name", "", "a label for the --publisher key")
	list := fs.Bool("list", false, "list the trusted skills and publishers")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	path := c.trustStorePath()
	switch {
	case *list:
		if err := wantArgs(pos, 0, "no SKILL with --list"); err != nil {
			return err
		}
		return c.trustList(path, *jsonOut)
	case *pubFile != "":
		if err := wantArgs(pos, 0, "no SKILL with --publisher"); err != nil {
			return err
		}
		return c.trustPublisher(path, *pubFile, *name, *yes, *jsonOut)
	}
	if err := wantArgs(pos, 1, "one SKILL (or --publisher FILE, or --list)"); err != nil {
		return err
	}
	store, err := trust.Open(path)
	if err != nil {
		return err
	}
	rt, closeRT, err := c.runtime(false)
	if err != nil {
		return err
	}
	defer closeRT()
	s, err := rt.Resolve(pos[0])
	if err != nil {
		return err
	}
	withSignatureWarning(s)
	m := s.Bundle.Manifest
	req := describeRequests(m)
	info := trustSkill{ID: s.ID, Version: m.Version, Tier: string(s.Tier), Path: s.Dir, Digest: s.Digest, Requests: &req}
	env := trustEnvelope{OK: true, Skill: &info, Store: path}
	if s.Tier == skill.TierExternal {
		if info.Image, err = c.pinImage(ctx, s); err != nil {
			return err
		}
	}
	out := c.stderr // the review goes to stderr so --json stdout stays one object
	if !*jsonOut {
		out = c.stdout
	}
	for _, w := range s.Warnings {
		warn(c.stderr, w)
	}
	if s.Tier != skill.TierExternal {
		env.Action, env.Note = "unchanged", fmt.Sprintf("%s is a %s skill: it runs without trust, so nothing was recorded (pin it with 'skillbox lock %s')", s.ID, s.Tier, shellquote.Word(pos[0]))
		if *jsonOut {
			return writeJSON(c.stdout, env, false)
		}
		fmt.Fprintln(c.stdout, env.Note)
		return nil
	}
	// Trusting records the resolved set of the skill's environment, and
	// resolving it runs pip in a jail (and, with "sdists: allow", a
	// package's build script there): nothing of the skill's runs before
	// the operator agrees. The question is about what can be known without
	// running anything (the bundle digest, the requirements as declared,
	// the image, the set of an environment already built); an environment
	// not built yet is built after "yes", and a resolution that fails then
	// records nothing. A skill already trusted at this digest and image
	// has that agreement: its environment is resolved again without
	// asking, and only a set other than the recorded one is asked about.
	prev, had := store.Lookup(s.ID)
	agreed := had && prev.Matches(s.Digest) && samePin(prev.Image, info.Image)
	build := false
	if len(m.Requirements) > 0 {
		st, err := rt.Environment(ctx, s.Dir, "")
		if err != nil {
			return fmt.Errorf("trust %s: %w", s.ID, err)
		}
		info.Environment, build = st.Locked, st.RunsEnvironments && !st.Built
	}
	resolve := func() error {
		st, err := rt.BuildEnvironment(ctx, s.Dir, "")
		if err != nil {
			return err
		}
		info.Environment, build = st.Locked, false
		return nil
	}
	if agreed && build {
		if err := resolve(); err != nil {
			return fmt.Errorf("trust %s: %w", s.ID, err)
		}
	}
	if agreed && slices.Equal(prev.Environment, info.Environment) {
		env.Action, env.Note = "unchanged", fmt.Sprintf("%s is already trusted with this digest (since %s)", s.ID, prev.TrustedAt.Format(time.RFC3339))
		if *jsonOut {
			return writeJSON(c.stdout, env, false)
		}
		fmt.Fprintln(c.stdout, env.Note)
		return nil
	}
	if !*jsonOut || !*yes {
		printReview(out, s, req, pos[0])
	}
	if had {
		now, err := skill.Files(s.Dir)
		if err != nil {
			return err
		}
		d := prev.Changes(trust.FilesOf(now))
		env.Changes = &trustDiff{Added: nonNil(d.Added), Removed: nonNil(d.Removed), Modified: nonNil(d.Modified)}
		fmt.Fprintf(out, "\nChanged since you trusted it on %s: %s\n", prev.TrustedAt.Format(time.RFC3339), d)
		if !samePin(prev.Image, info.Image) && prev.Image != nil && info.Image != nil {
			fmt.Fprintf(out, "Its image %s is now %s (was %s)\n", info.Image.Ref, info.Image.Digest, prev.Image.Digest)
		}
	}
	if info.Image != nil {
		fmt.Fprintf(out, "\nIt runs in the image %s at %s; trusting pins that image.\n", info.Image.Ref, info.Image.Digest)
	}
	question := fmt.Sprintf("Trust %s %s at this digest?", s.ID, m.Version)
	if build {
		how := "pip resolves and installs the packages above in a jail"
		if pol, err := c.policy(); err == nil && pol.AllowsSdists(s.ID) {
			how += ", where your policy's \"sdists: allow\" lets a source package's build script run"
		}
		fmt.Fprintf(out, "\nIts Python environment is built after you confirm, not before: %s. Trusting records the set it resolves to; another resolution is untrusted.\n", how)
		question = fmt.Sprintf("Trust %s %s at this digest, then build its environment?", s.ID, m.Version)
	} else {
		printTrustedSet(out, prev, info.Environment)
	}
	rec := audit.Record{Event: audit.EventTrust, Skill: s.ID, Version: m.Version, Digest: s.Digest, Tier: string(s.Tier), Detail: s.Dir}
	ok, err := c.confirm(question, *yes)
	if err != nil || !ok {
		rec.Outcome = "declined"
		if err != nil {
			rec.Outcome, rec.ErrorKind, rec.Error = "error", string(errdefs.KindOf(err)), err.Error()
		}
		if aerr := c.record(rec); aerr != nil && err == nil {
			err = aerr
		}
		if err != nil {
			return err
		}
		env.Action = "declined"
		if *jsonOut {
			return writeJSON(c.stdout, env, false)
		}
		fmt.Fprintln(c.stdout, "Not trusted.")
		return nil
	}
	if build {
		if err := resolve(); err != nil {
			err = fmt.Errorf("trust %s: its environment could not be built, so nothing was recorded: %w", s.ID, err)
			rec.Outcome, rec.ErrorKind, rec.Error = "error", string(errdefs.KindOf(err)), err.Error()
			c.record(rec)
			return err
		}
		printTrustedSet(out, prev, info.Environment)
	}
	// The review above read the store without a lock (the operator may take
	// their time); the change is made on the store as it is now, under its
	// lock, so that a concurrent trust or untrust is not lost.
	var e trust.Entry
	err = trust.Update(path, func(st *trust.Store) error {
		var err error
		if e, err = st.Trust(s, time.Now()); err != nil {
			return err
		}
		e.Image, e.Environment = info.Image, info.Environment
		if err := st.PinEnvironment(s.ID, info.Environment); err != nil {
			return err
		}
		return st.PinImage(s.ID, info.Image)
	})
	if err != nil {
		rec.Outcome, rec.ErrorKind, rec.Error = "error", string(errdefs.KindOf(err)), err.Error()
		c.record(rec)
		return err
	}
	if err := c.record(rec); err != nil {
		return err
	}
	env.Action, info.TrustedAt = "trusted", e.TrustedAt.Format(time.RFC3339)
	if *jsonOut {
		return writeJSON(c.stdout, env, false)
	}
	fmt.Fprintf(c.stdout, "Trusted %s %s (%s). It runs inside the sandbox with only the grants you give it; if any file changes it is untrusted again.\n", s.ID, m.Version, s.Digest)
	return nil
}

// printTrustedSet shows the resolved set of a skill's environment that
// trusting records, and how it differs from the set of its previous trust
// entry prev (the zero Entry when there is none).
func printTrustedSet(w io.Writer, prev trust.Entry, set []string) {
	if len(prev.Environment) > 0 && !slices.Equal(prev.Environment, set) {
		fmt.Fprintf(w, "Its environment resolved to another set than when you trusted it:\n")
		for _, x := range set {
			if !slices.Contains(prev.Environment, x) {
				fmt.Fprintf(w, "  + %s\n", x)
			}
		}
		for _, x := range prev.Environment {
			if !slices.Contains(set, x) {
				fmt.Fprintf(w, "  - %s\n", x)
			}
		}
	}
	if len(set) > 0 {
		fmt.Fprintf(w, "\nIts environment resolved to (trusting records this set; another resolution is untrusted):\n")
		for _, x := range set {
			fmt.Fprintf(w, "  %s\n", x)
		}
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// printReview shows what trusting s means: where it is and what it asks
// for. ref is how the operator named it, for the commands it prints.
func printReview(w io.Writer, s *skill.Skill, r requests, ref string) {
	m := s.Bundle.Manifest
	fmt.Fprintf(w, "%s %s (%s)\n  path:   %s\n  digest: %s\n", s.ID, inline(w, m.Version), s.Tier, s.Dir, s.Digest)
	if m.Issuer != nil {
		fmt.Fprintf(w, "  issuer: %s (as the manifest claims; unverified)\n", inline(w, fmt.Sprint(m.Issuer)))
	}
	if id, ok := trust.SignedID(s.Dir); ok && id != s.ID {
		fmt.Fprintf(w, "  signed: as another skill, %s (%s does not vouch for %s; 'skillbox verify %s' says more)\n", id, trust.SignatureFile, s.ID, shellquote.Word(ref))
	} else if trust.HasSignature(s.Dir) {
		fmt.Fprintf(w, "  signed: yes (%s; check it with 'skillbox verify %s')\n", trust.SignatureFile, shellquote.Word(ref))
	}
	fmt.Fprintln(w, "\nTrusting lets it run; it still gets only what you grant. It requests:")
	if len(r.Env)+len(r.Network)+len(r.Read)+len(r.Requirements) == 0 && r.Limits == nil {
		fmt.Fprintln(w, "  nothing beyond its own bundle and a private scratch folder")
	}
	for _, e := range r.Env {
		req := "optional"
		if e.Required {
			req = "required"
		}
		fmt.Fprintf(w, "  env %s (%s): grant with %s\n", e.Name, req, e.Grant)
	}
	for _, n := range r.Network {
		fmt.Fprintf(w, "  network %s: grant with --allow-net %s\n", n, n)
	}
	for _, p := range r.Read {
		fmt.Fprintf(w, "  read %s (inside its bundle)\n", p)
	}
	if r.Limits != nil {
		fmt.Fprintf(w, "  limits: %v\n", r.Limits)
	}
	if len(r.Requirements) > 0 {
		fmt.Fprintf(w, "  python packages: %s\n", strings.Join(r.Requirements, ", "))
	}
}

func (c *cmdContext) trustPublisher(path, file, name string, yes, jsonOut bool) error {
	key, err := trust.ReadPublicKey(file)
	if err != nil {
		return err
	}
	// A broken store is reported before the question; the change itself is
	// made under the store's lock.
	if _, err := trust.Open(path); err != nil {
		return err
	}
	if name == "" {
		name = strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
	}
	id := trust.KeyID(key.ID())
	rec := audit.Record{Event: audit.EventPublisher, Skill: "-", Key: id, Detail: name}
	fmt.Fprintf(c.stderr, "Publisher key %s (%s): every skill it signs will pass the trust gate (still only with the grants you give).\n", id, name)
	ok, err := c.confirm("Trust this publisher?", yes)
	if err != nil || !ok {
		rec.Outcome = "declined"
		if err != nil {
			rec.Outcome, rec.ErrorKind, rec.Error = "error", string(errdefs.KindOf(err)), err.Error()
		}
		c.record(rec)
		if err != nil {
			return err
		}
		fmt.Fprintln(c.stdout, "Not trusted.")
		return nil
	}
	var p trust.Publisher
	if err := trust.Update(path, func(st *trust.Store) error {
		p = st.AddPublisher(name, key, time.Now())
		return nil
	}); err != nil {
		return err
	}
	if err := c.record(rec); err != nil {
		return err
	}
	if jsonOut {
		return writeJSON(c.stdout, trustEnvelope{OK: true, Action: "publisher", Store: path, Keys: []trust.Publisher{p}}, false)
	}
	fmt.Fprintf(c.stdout, "Trusted publisher %s (%s).\n", p.Name, p.KeyID)
	return nil
}

func (c *cmdContext) trustList(path string, jsonOut bool) error {
	store, err := trust.Open(path)
	if err != nil {
		return err
	}
	env := trustEnvelope{OK: true, Action: "list", Store: path, Entries: []trustSkill{}, Keys: store.Publishers}
	for _, e := range store.Skills {
		env.Entries = append(env.Entries, trustSkill{ID: e.ID, Version: e.Version, Path: e.Path, Digest: e.Digest, TrustedAt: e.TrustedAt.Format(time.RFC3339)})
	}
	if jsonOut {
		if env.Keys == nil {
			env.Keys = []trust.Publisher{}
		}
		return writeJSON(c.stdout, env, false)
	}
	fmt.Fprintf(c.stdout, "Trust store %s\n", path)
	for _, e := range env.Entries {
		fmt.Fprintf(c.stdout, "  skill %s %s %s (trusted %s, from %s)\n", e.ID, e.Version, e.Digest, e.TrustedAt, e.Path)
	}
	for _, p := range env.Keys {
		fmt.Fprintf(c.stdout, "  publisher %s %s (added %s)\n", p.KeyID, p.Name, p.AddedAt.Format(time.RFC3339))
	}
	return nil
}

func cmdUntrust(ctx context.Context, c *cmdContext, args []string) error {
	fs := newFlags(c, "untrust", "SKILL | --publisher KEYID|NAME")
	pub := fs.String("publisher", "", "remove the publisher key with this `KEYID or NAME`")
	fs.Bool("json", false, "print errors as JSON")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	path := c.trustStorePath()
	if *pub != "" {
		if err := wantArgs(pos, 0, "no SKILL with --publisher"); err != nil {
			return err
		}
		var gone []trust.Publisher
		if err := trust.Update(path, func(st *trust.Store) error {
			if gone = st.RemovePublisher(*pub); len(gone) == 0 {
				return errdefs.New(errdefs.NotFound, "no trusted publisher %q in %s", *pub, path)
			}
			return nil
		}); err != nil {
			return err
		}
		for _, p := range gone {
			if err := c.record(audit.Record{Event: audit.EventUnpublish, Skill: "-", Key: p.KeyID, Detail: p.Name}); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "Removed publisher %s (%s).\n", p.Name, p.KeyID)
		}
		return nil
	}
	if err := wantArgs(pos, 1, "one SKILL id (or --publisher KEYID)"); err != nil {
		return err
	}
	// Whether the argument names an entry or a path is decided on the store
	// as read now; the removal itself is made under the store's lock.
	store, err := trust.Open(path)
	if err != nil {
		return err
	}
	id := pos[0]
	if _, ok := store.Lookup(id); !ok && !skill.ValidID(id) {
		// A path: untrust the skill it resolves to.
		rt, closeRT, err := c.runtime(false)
		if err != nil {
			return err
		}
		defer closeRT()
		s, err := rt.Resolve(id)
		if err != nil {
			return err
		}
		id = s.ID
	}
	var e trust.Entry
	if err := trust.Update(path, func(st *trust.Store) error {
		var ok bool
		if e, ok = st.Lookup(id); !ok {
			return errdefs.New(errdefs.NotFound, "skill %s is not in the trust store %s", id, path)
		}
		st.Remove(id)
		return nil
	}); err != nil {
		return err
	}
	if err := c.record(audit.Record{Event: audit.EventUntrust, Skill: id, Version: e.Version, Digest: e.Digest}); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "Untrusted %s.\n", id)
	return nil
}

// pinImage resolves the image a container skill runs (a relative path
// against its folder, as the backend will against the sealed copy of it)
// to the digest trusting it pins; nil for a skill without an image.
func (c *cmdContext) pinImage(ctx context.Context, s *skill.Skill) (*trust.ImagePin, error) {
	m := s.Bundle.Manifest
	if !m.Containerized() || m.Container == nil {
		return nil, nil
	}
	cache, err := c.imageCache()
	if err != nil {
		return nil, err
	}
	if df := m.Container.Dockerfile; df != "" {
		// Builds are not reproducible: the pin is the image built for
		// this bundle digest, which must exist.
		p, ok, err := cache.BuiltFor(image.BuiltKey(s.Digest, df))
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, errdefs.New(errdefs.Unavailable, "%s runs in an image built from its %s and none is built for this version: run 'skillbox image build %s' first, then pin it", s.ID, df, s.ID)
		}
		return &trust.ImagePin{Ref: "dockerfile:" + df, Digest: string(p.Digest)}, nil
	}
	ref, err := image.ParseRef(m.Container.Image, s.Dir)
	if err != nil {
		return nil, err
	}
	p, err := cache.Resolve(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("resolve the image of %s to pin it: %w", s.ID, err)
	}
	return &trust.ImagePin{Ref: m.Container.Image, Digest: string(p.Digest)}, nil
}

// samePin reports whether two image pins name the same image.
func samePin(a, b *trust.ImagePin) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Digest == b.Digest
}
