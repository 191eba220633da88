package pep440

import (
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/skillbox-dev/skillbox/errdefs"
)

// Version is a parsed PEP 440 version. The zero value is not a valid version.
type Version struct {
	// Epoch is the N in "N!", 0 if absent.
	Epoch int
	// Release is the release segment, e.g. [1 20 3] for "1.20.3".
	Release []int
	// Pre is the pre-release label, normalised to "a", "b" or "rc"; "" if none.
	Pre string
	// PreN is the pre-release number.
	PreN int
	// Post is the post-release number, -1 if none.
	Post int
	// Dev is the dev-release number, -1 if none.
	Dev int
	// Local is the local version label split at separators and lower-cased,
	// e.g. ["ubuntu", "1"] for "+ubuntu-1"; nil if none.
	Local []string
}

// versionPattern is the pattern of PEP 440's appendix, which accepts the
// non-normalised spellings ("1.0-alpha.1", "v2", "1.0-1") as well. It is
// compiled on first use, not in the package's init: every skillbox process
// start (the CLI and the jail's init stage alike) would pay for it.
var versionPattern = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(?i)^\s*v?` +
		`(?:(?P<epoch>[0-9]+)!)?` +
		`(?P<release>[0-9]+(?:\.[0-9]+)*)` +
		`(?P<pre>[-_.]?(?P<pre_l>alpha|a|beta|b|preview|pre|c|rc)[-_.]?(?P<pre_n>[0-9]+)?)?` +
		`(?P<post>(?:-(?P<post_n1>[0-9]+))|(?:[-_.]?(?P<post_l>post|rev|r)[-_.]?(?P<post_n2>[0-9]+)?))?` +
		`(?P<dev>[-_.]?(?P<dev_l>dev)[-_.]?(?P<dev_n>[0-9]+)?)?` +
		`(?:\+(?P<local>[a-z0-9]+(?:[-_.][a-z0-9]+)*))?` +
		`\s*$`)
})

// maxVersionLen bounds the input; real versions are far shorter.
const maxVersionLen = 256

// ParseVersion parses a PEP 440 version, accepting the alternative
// spellings PEP 440 normalises ("V1.0", "1.0-ALPHA1", "1.0-1", "1.0+Ubuntu_1").
func ParseVersion(s string) (Version, error) {
	if len(s) > maxVersionLen {
		return Version{}, errdefs.New(errdefs.Invalid, "invalid version: longer than %d bytes", maxVersionLen)
	}
	re := versionPattern()
	m := re.FindStringSubmatch(s)
	if m == nil {
		return Version{}, errdefs.New(errdefs.Invalid, "invalid version %q: not a PEP 440 version", s)
	}
	g := func(name string) string { return m[re.SubexpIndex(name)] }
	v := Version{Post: -1, Dev: -1}
	var err error
	if e := g("epoch"); e != "" {
		if v.Epoch, err = atoi(e); err != nil {
			return Version{}, errdefs.New(errdefs.Invalid, "invalid version %q: %w", s, err)
		}
	}
	for _, part := range strings.Split(g("release"), ".") {
		n, err := atoi(part)
		if err != nil {
			return Version{}, errdefs.New(errdefs.Invalid, "invalid version %q: %w", s, err)
		}
		v.Release = append(v.Release, n)
	}
	if l := g("pre_l"); l != "" {
		switch strings.ToLower(l) {
		case "a", "alpha":
			v.Pre = "a"
		case "b", "beta":
			v.Pre = "b"
		default: // c, rc, pre, preview
			v.Pre = "rc"
		}
		if v.PreN, err = optAtoi(g("pre_n")); err != nil {
			return Version{}, errdefs.New(errdefs.Invalid, "invalid version %q: %w", s, err)
		}
	}
	if g("post") != "" {
		n := g("post_n1")
		if n == "" {
			n = g("post_n2")
		}
		if v.Post, err = optAtoi(n); err != nil {
			return Version{}, errdefs.New(errdefs.Invalid, "invalid version %q: %w", s, err)
		}
	}
	if g("dev") != "" {
		if v.Dev, err = optAtoi(g("dev_n")); err != nil {
			return Version{}, errdefs.New(errdefs.Invalid, "invalid version %q: %w", s, err)
		}
	}
	if l := g("local"); l != "" {
		v.Local = strings.FieldsFunc(strings.ToLower(l), func(r rune) bool { return r == '-' || r == '_' || r == '.' })
	}
	return v, nil
}

// maxNumber keeps every number in an int on all platforms.
const maxNumber = 1<<31 - 1

func atoi(s string) (int, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > maxNumber {
		return 0, errdefs.New(errdefs.Invalid, "number %s too large", s)
	}
	return int(n), nil
}

func optAtoi(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	return atoi(s)
}

// String returns the normalised form, e.g. "1!2.0rc1.post2.dev3+local.1".
func (v Version) String() string {
	var sb strings.Builder
	if v.Epoch != 0 {
		sb.WriteString(strconv.Itoa(v.Epoch))
		sb.WriteByte('!')
	}
	for i, n := range v.Release {
		if i > 0 {
			sb.WriteByte('.')
		}
		sb.WriteString(strconv.Itoa(n))
	}
	if v.Pre != "" {
		sb.WriteString(v.Pre)
		sb.WriteString(strconv.Itoa(v.PreN))
	}
	if v.Post >= 0 {
		sb.WriteString(".post")
		sb.WriteString(strconv.Itoa(v.Post))
	}
	if v.Dev >= 0 {
		sb.WriteString(".dev")
		sb.WriteString(strconv.Itoa(v.Dev))
	}
	if len(v.Local) > 0 {
		sb.WriteByte('+')
		sb.WriteString(strings.Join(v.Local, "."))
	}
	return sb.String()
}

// IsPrerelease reports whether v is a pre-release or a dev release.
func (v Version) IsPrerelease() bool { return v.Pre != "" || v.Dev >= 0 }

// IsPostrelease reports whether v is a post-release.
func (v Version) IsPostrelease() bool { return v.Post >= 0 }

// Public returns v without its local label.
func (v Version) Public() Version {
	v.Local = nil
	return v
}

// Base returns v's epoch and release only.
func (v Version) Base() Version {
	return Version{Epoch: v.Epoch, Release: v.Release, Post: -1, Dev: -1}
}

// Compare returns -1, 0 or +1 as v sorts before, equal to or after w, in
// PEP 440 order: epoch, release (trailing zeros ignored), then
// X.dev < Xa < Xb < Xrc < X < X.post, then the local label.
func (v Version) Compare(w Version) int {
	if c := cmpInt(v.Epoch, w.Epoch); c != 0 {
		return c
	}
	n := max(len(v.Release), len(w.Release))
	for i := range n {
		if c := cmpInt(at(v.Release, i), at(w.Release, i)); c != 0 {
			return c
		}
	}
	if c := cmpInt(v.preKey(), w.preKey()); c != 0 {
		return c
	}
	if v.Pre != "" && w.Pre != "" {
		if c := cmpInt(v.PreN, w.PreN); c != 0 {
			return c
		}
	}
	if c := cmpInt(v.Post, w.Post); c != 0 { // -1 (none) sorts first
		return c
	}
	if c := cmpInt(devKey(v.Dev), devKey(w.Dev)); c != 0 {
		return c
	}
	return cmpLocal(v.Local, w.Local)
}

// preKey orders the pre-release phase: a dev release of a final release
// (1.0.dev1) sorts before its pre-releases, a final release after them.
func (v Version) preKey() int {
	switch {
	case v.Pre == "" && v.Post < 0 && v.Dev >= 0:
		return 0
	case v.Pre == "a":
		return 1
	case v.Pre == "b":
		return 2
	case v.Pre == "rc":
		return 3
	default:
		return 4
	}
}

// devKey puts "no dev release" after every dev release.
func devKey(d int) int {
	if d < 0 {
		return maxNumber + 1
	}
	return d
}

// cmpLocal compares local labels: none sorts first; segment by segment,
// numbers compare numerically and after any alphanumeric segment; a longer
// label wins a tie.
func cmpLocal(a, b []string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		an, aerr := strconv.ParseUint(a[i], 10, 64)
		bn, berr := strconv.ParseUint(b[i], 10, 64)
		switch {
		case aerr == nil && berr == nil:
			if an != bn {
				if an < bn {
					return -1
				}
				return 1
			}
		case aerr == nil:
			return 1
		case berr == nil:
			return -1
		default:
			if c := strings.Compare(a[i], b[i]); c != 0 {
				return c
			}
		}
	}
	return cmpInt(len(a), len(b))
}

func at(s []int, i int) int {
	if i < len(s) {
		return s[i]
	}
	return 0
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
