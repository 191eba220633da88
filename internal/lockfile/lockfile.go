// Package lockfile reads and writes skills.lock, which pins the skills a
// project uses: their ids, versions, digests, tiers and the effective grants
// they run with. `skillbox run --locked` refuses any drift from it: a skill
// missing from the lock, a changed digest, version or tier, or a grant wider
// than the locked one. A narrower grant is not drift.
//
// The file is indented JSON with sorted keys, so that it diffs well in
// review, and it is read strictly (internal/strictjson): unknown fields, a
// key given twice, a field name in another case, trailing data or a bad
// digest are errors, never ignored.
package lockfile

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/atomicfile"
	"github.com/skillbox-dev/skillbox/internal/shellquote"
	"github.com/skillbox-dev/skillbox/internal/strictjson"
	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/skill"
)

// Name is the lockfile's conventional name, looked for in the working
// directory.
const Name = "skills.lock"

const (
	version  = 1
	maxBytes = 16 << 20
)

// Lock is a parsed skills.lock.
type Lock struct {
	// Version is the format version, 1.
	Version int `json:"version"`
	// Skills are the locked skills by id.
	Skills map[string]Entry `json:"skills"`

	path string
	// refs are how the operator named skills (Refer), for hints.
	refs map[string]string
}

// Entry pins one skill.
type Entry struct {
	Version string `json:"version"`
	Digest  string `json:"digest"`
	Tier    string `json:"tier"`
	Grants  Grants `json:"grants"`
	// Environment is the resolved set of the skill's own environment when
	// it was locked ("name==version sha256=HEX", sorted), for a skill with
	// requirements on a backend that runs environments: another
	// resolution of the same requirements is a drift.
	Environment []string `json:"environment,omitempty"`
	// Image, for a skill with execution: container, is the image it was
	// locked with: a locked call runs that image only.
	Image *Image `json:"image,omitempty"`
}

// Image pins a container skill's image: its reference as the manifest
// writes it and the digest that resolved to when locked.
type Image struct {
	Ref    string `json:"ref"`
	Digest string `json:"digest"`
}

// Grants is an effective grant: what the skill was allowed when locked.
type Grants struct {
	Env     []string `json:"env"`
	Network []string `json:"network"`
	Read    []string `json:"read"`
	// Resolve are the egress name→address mappings ("HOST=IP") and Secrets
	// the names of host-bound secrets (never values).
	Resolve []string `json:"resolve,omitempty"`
	Secrets []string `json:"secrets,omitempty"`
	// Timeout and Memory are the effective limits (defaults applied).
	Timeout string `json:"timeout"`
	Memory  int64  `json:"memory"`
}

// New returns an empty lock that Save writes to path.
func New(path string) *Lock {
	return &Lock{Version: version, Skills: map[string]Entry{}, path: path}
}

// Load reads the lockfile at path. A missing file is errdefs.NotFound; a
// malformed one is errdefs.Invalid naming the line or entry.
func Load(path string) (*Lock, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errdefs.New(errdefs.NotFound, "no lockfile at %s; create one with '%s'", path, strings.Join(lockCommand("", path), " "))
	}
	if err != nil {
		return nil, errdefs.New(errdefs.Invalid, "lockfile %s: %v", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxBytes+1))
	if err != nil || len(data) > maxBytes {
		return nil, errdefs.New(errdefs.Invalid, "lockfile %s: unreadable or too large", path)
	}
	l, err := Parse(data)
	if err != nil {
		return nil, errdefs.New(errdefs.Invalid, "lockfile %s: %v", path, err)
	}
	l.path = path
	return l, nil
}

var digestRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^sha256:[0-9a-f]{64}$`) })

// Parse decodes and validates lockfile bytes.
func Parse(data []byte) (*Lock, error) {
	var l Lock
	if err := strictjson.Decode(data, &l); err != nil {
		return nil, err
	}
	if l.Version != version {
		return nil, fmt.Errorf("unknown version %d (this skillbox reads %d)", l.Version, version)
	}
	if l.Skills == nil {
		return nil, errors.New(`"skills" is missing`)
	}
	for _, id := range sortedIDs(l.Skills) {
		e := l.Skills[id]
		if !skill.ValidID(id) {
			return nil, fmt.Errorf("%q is not a skill id", id)
		}
		if !digestRE().MatchString(e.Digest) {
			return nil, fmt.Errorf("%s: digest %q is not sha256:<64 hex digits>", id, e.Digest)
		}
		switch skill.Tier(e.Tier) {
		case skill.TierBundled, skill.TierProject, skill.TierExternal:
		default:
			return nil, fmt.Errorf("%s: unknown tier %q", id, e.Tier)
		}
		if e.Grants.Timeout != "" {
			if d, err := time.ParseDuration(e.Grants.Timeout); err != nil || d <= 0 {
				return nil, fmt.Errorf("%s: grants.timeout %q is not a positive duration", id, e.Grants.Timeout)
			}
		}
		if e.Grants.Memory < 0 {
			return nil, fmt.Errorf("%s: grants.memory is negative", id)
		}
		if e.Image != nil && (e.Image.Ref == "" || !digestRE().MatchString(e.Image.Digest)) {
			return nil, fmt.Errorf("%s: image needs a ref and a digest sha256:<64 hex digits>", id)
		}
	}
	return &l, nil
}

func sortedIDs(m map[string]Entry) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Path is the file the lock was read from or will be saved to.
func (l *Lock) Path() string { return l.path }

// Refer records that the operator names the skill id as ref (a path to its
// folder, say): the commands that Check's denials suggest then name it so,
// and work as printed. Without it they use the id, which resolves only for
// skills in a skill root.
func (l *Lock) Refer(id, ref string) {
	if ref == "" || ref == id {
		return
	}
	if l.refs == nil {
		l.refs = map[string]string{}
	}
	l.refs[id] = ref
}

// Repin moves the pin of id from the digest old to now, in memory (Save
// would write it), and reports whether id was pinned at old. It is for a
// bundle pinned by its digest from before bundle digests left the
// signature file out (trust.LegacyDigest): same files, new digest.
func (l *Lock) Repin(id, old, now string) bool {
	e, ok := l.Skills[id]
	if !ok || e.Digest != old || !digestRE().MatchString(now) {
		return false
	}
	e.Digest = now
	l.Skills[id] = e
	return true
}

// union is the grant covering both a and b: their lists merged, the
// longer timeout and the larger memory.
func union(a, b Grants) Grants {
	merge := func(x, y []string) []string {
		return slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(x), y...))))
	}
	u := Grants{Env: merge(a.Env, b.Env), Network: merge(a.Network, b.Network), Read: merge(a.Read, b.Read),
		Resolve: merge(a.Resolve, b.Resolve), Secrets: merge(a.Secrets, b.Secrets), Timeout: a.Timeout, Memory: max(a.Memory, b.Memory)}
	ta, errA := time.ParseDuration(a.Timeout)
	tb, errB := time.ParseDuration(b.Timeout)
	if errA != nil || (errB == nil && tb > ta) {
		u.Timeout = b.Timeout
	}
	return u
}

// ref is how the operator names id (Refer), else id.
func (l *Lock) ref(id string) string {
	if r, ok := l.refs[id]; ok {
		return r
	}
	return id
}

// lockCommand is the argv of "skillbox lock [REF] [--lockfile PATH]" that
// writes the lockfile at path, each word shell-quoted where needed.
func lockCommand(ref, path string) []string {
	cmd := []string{"skillbox", "lock"}
	if ref != "" {
		cmd = append(cmd, shellquote.Word(ref))
	}
	if path != "" && path != Name {
		cmd = append(cmd, "--lockfile", shellquote.Word(path))
	}
	return cmd
}

// RelockCommand is the command that locks id in this lockfile with the
// grants g (those of a call that drifted, so that the same call then passes
// under --locked; or the locked ones, to re-pin them): the grant flags name
// g's lists, and --timeout and --memory its limits unless they are the
// defaults (a bare lock would drop a 5s timeout the call ran with). The
// skill is named as Refer recorded, and words are shell-quoted where needed.
func (l *Lock) RelockCommand(id string, g Grants) string {
	cmd := lockCommand(l.ref(id), l.path)
	for _, f := range []struct {
		flag   string
		values []string
	}{{"--allow-env", g.Env}, {"--allow-net", g.Network}, {"--allow-read", g.Read}} {
		for _, v := range slices.Sorted(slices.Values(f.values)) {
			cmd = append(cmd, f.flag, shellquote.Word(v))
		}
	}
	if d, err := time.ParseDuration(g.Timeout); err == nil && d > 0 && d != sandbox.DefaultTimeout {
		cmd = append(cmd, "--timeout", d.String())
	}
	if g.Memory > 0 && g.Memory != sandbox.DefaultMemory {
		cmd = append(cmd, "--memory", skill.FormatSize(g.Memory))
	}
	return strings.Join(cmd, " ")
}

// Set pins id to e (lists are sorted and never null).
func (l *Lock) Set(id string, e Entry) {
	for _, s := range []*[]string{&e.Grants.Env, &e.Grants.Network, &e.Grants.Read} {
		*s = slices.Sorted(slices.Values(*s))
		if *s == nil {
			*s = []string{}
		}
	}
	e.Grants.Resolve = slices.Sorted(slices.Values(e.Grants.Resolve))
	e.Grants.Secrets = slices.Sorted(slices.Values(e.Grants.Secrets))
	e.Environment = slices.Sorted(slices.Values(e.Environment))
	l.Skills[id] = e
}

// CheckEnvironment refuses, with a *errdefs.DeniedError naming the first
// difference, a call of id whose environment resolved to resolved
// ("name==version sha256=HEX") when the lock recorded another set. An
// entry without a recorded set checks nothing.
func (l *Lock) CheckEnvironment(id string, resolved []string) error {
	e, ok := l.Skills[id]
	if !ok || len(e.Environment) == 0 || slices.Equal(e.Environment, resolved) {
		return nil
	}
	diff := "the sets differ"
	for _, x := range resolved {
		if !slices.Contains(e.Environment, x) {
			diff = fmt.Sprintf("it has %s, not locked", x)
			break
		}
	}
	if diff == "the sets differ" {
		for _, x := range e.Environment {
			if !slices.Contains(resolved, x) {
				diff = fmt.Sprintf("it lacks the locked %s", x)
				break
			}
		}
	}
	return &errdefs.DeniedError{
		Permission: "lockfile environment",
		Reason:     fmt.Sprintf("skill %s drifted from %s: its environment resolved differently (%s)", id, l.path, diff),
		Grant:      fmt.Sprintf("'%s' after reviewing the change (or run without --locked)", l.RelockCommand(id, e.Grants)),
	}
}

// Save writes the lock to its path atomically (mode 0644: it is meant to be
// committed and reviewed).
func (l *Lock) Save() error {
	l.Version = version
	data, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return errdefs.Wrap(errdefs.Internal, err, "lockfile")
	}
	if err := atomicfile.WriteFile(l.path, append(data, '\n'), 0o644); err != nil {
		return errdefs.Wrap(errdefs.Internal, err, "write lockfile")
	}
	return nil
}

// CheckImage refuses, with a *errdefs.DeniedError, a locked call of id
// whose image is pinned elsewhere (trusted) at another digest than the
// lock's; it returns the digest the call must run ("" when the lock pins
// none).
func (l *Lock) CheckImage(id, pinned string) (string, error) {
	e, ok := l.Skills[id]
	if !ok || e.Image == nil {
		return "", nil
	}
	if pinned != "" && pinned != e.Image.Digest {
		return "", &errdefs.DeniedError{
			Permission: "lockfile image",
			Reason:     fmt.Sprintf("skill %s drifted from %s: its image %s is trusted at %s, locked at %s", id, l.path, e.Image.Ref, pinned, e.Image.Digest),
			Grant:      fmt.Sprintf("'%s' after reviewing the image (or run without --locked)", l.RelockCommand(id, e.Grants)),
		}
	}
	return e.Image.Digest, nil
}

// Check refuses, with a *errdefs.DeniedError naming what drifted, a call of
// id (at version, digest and tier) with grants g that the lock does not
// cover.
func (l *Lock) Check(id, ver, digest, tier string, g Grants) error {
	e, ok := l.Skills[id]
	// deny suggests re-locking with the locked grants and this call's
	// (so the call passes and nothing reviewed before is dropped), or else
	// what.
	deny := func(what, reason string, orElse ...string) error {
		relock := g
		if ok {
			relock = union(e.Grants, g)
		}
		or := append(orElse, "run without --locked")
		return &errdefs.DeniedError{
			Permission: "lockfile " + what,
			Reason:     fmt.Sprintf("skill %s drifted from %s: %s", id, l.path, reason),
			Grant:      fmt.Sprintf("'%s' after reviewing the change (or %s)", l.RelockCommand(id, relock), strings.Join(or, ", or ")),
		}
	}
	if !ok {
		return deny("entry", "it is not in the lockfile")
	}
	if e.Digest != digest {
		return deny("digest", fmt.Sprintf("digest is %s, locked %s", digest, e.Digest))
	}
	if e.Version != ver {
		return deny("version", fmt.Sprintf("version is %q, locked %q", ver, e.Version))
	}
	if e.Tier != tier {
		return deny("tier", fmt.Sprintf("it now resolves as %s, locked as %s (is another copy shadowing it?)", tier, e.Tier))
	}
	for _, c := range []struct {
		what        string
		got, locked []string
	}{
		{"env", g.Env, e.Grants.Env}, {"network", g.Network, e.Grants.Network}, {"read", g.Read, e.Grants.Read},
		{"resolve", g.Resolve, e.Grants.Resolve}, {"secrets", g.Secrets, e.Grants.Secrets},
	} {
		var extra []string
		for _, x := range c.got {
			if !slices.Contains(c.locked, x) {
				extra = append(extra, x)
			}
		}
		if len(extra) == 0 {
			continue
		}
		reason := fmt.Sprintf("%s grant %s is wider than the locked [%s]", c.what, strings.Join(extra, ", "), strings.Join(c.locked, ", "))
		if c.what == "resolve" {
			// lock has no --egress-resolve: it locks the policy file's.
			return &errdefs.DeniedError{
				Permission: "lockfile grants.resolve",
				Reason:     fmt.Sprintf("skill %s drifted from %s: %s", id, l.path, reason),
				Grant:      fmt.Sprintf("egress_resolve: [%s] in the policy file, then '%s' (or run without --egress-resolve %s, or without --locked)", strings.Join(extra, ", "), strings.Join(lockCommand(l.ref(id), l.path), " "), shellquote.Word(extra[0])),
			}
		}
		return deny("grants."+c.what, reason)
	}
	if e.Grants.Timeout != "" && g.Timeout != "" {
		got, _ := time.ParseDuration(g.Timeout)
		locked, _ := time.ParseDuration(e.Grants.Timeout)
		if got > locked {
			return deny("grants.timeout", fmt.Sprintf("timeout %s is longer than the locked %s", got, locked), fmt.Sprintf("--timeout %s or less", locked))
		}
	}
	if e.Grants.Memory > 0 && g.Memory > e.Grants.Memory {
		return deny("grants.memory", fmt.Sprintf("memory %s is more than the locked %s", skill.FormatSize(g.Memory), skill.FormatSize(e.Grants.Memory)), fmt.Sprintf("--memory %s or less", skill.FormatSize(e.Grants.Memory)))
	}
	return nil
}
