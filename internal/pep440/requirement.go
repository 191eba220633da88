package pep440

import (
	"regexp"
	"strings"
	"sync"

	"github.com/skillbox-dev/skillbox/errdefs"
)

// Requirement is a parsed requirement string such as
// "baz[extra]>=1,<2; python_version>'3.8'".
type Requirement struct {
	// Name is the project name as written.
	Name string
	// Normalized is the PEP 503 form of Name: lower case, each run of
	// "-", "_" and "." replaced by one "-".
	Normalized string
	// Extras are the names inside [...], as written.
	Extras []string
	// Specifiers are the version clauses, all of which must hold.
	Specifiers []Specifier
	// Marker is the environment marker after ";", trimmed and kept
	// verbatim; it is never evaluated.
	Marker string
}

// Specifier is one version clause, e.g. {">=", "1.20"} or {"==", "2.*"}.
type Specifier struct {
	// Op is one of ==, !=, <, <=, >, >=, ~=, ===.
	Op string
	// Version is the version as written (with a trailing ".*" for
	// wildcard == and !=).
	Version string
}

// String returns the specifier as Op followed by Version.
func (s Specifier) String() string { return s.Op + s.Version }

// String returns the requirement in a canonical spelling.
func (r Requirement) String() string {
	var sb strings.Builder
	sb.WriteString(r.Name)
	if len(r.Extras) > 0 {
		sb.WriteString("[" + strings.Join(r.Extras, ",") + "]")
	}
	for i, s := range r.Specifiers {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(s.String())
	}
	if r.Marker != "" {
		sb.WriteString("; " + r.Marker)
	}
	return sb.String()
}

const maxRequirementLen = 1024

// The patterns are compiled on first use (see versionPattern).
var (
	namePattern      = lazyRegexp(`^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?`)
	extraNamePattern = lazyRegexp(`^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$`)
	separatorRuns    = lazyRegexp(`[-_.]+`)
	// Longest operators first.
	operators = []string{"===", "~=", "==", "!=", "<=", ">=", "<", ">"}
)

func lazyRegexp(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}

// Normalize returns the PEP 503 normalised form of a project name.
func Normalize(name string) string {
	return strings.ToLower(separatorRuns().ReplaceAllString(name, "-"))
}

// ParseRequirement parses a PEP 508 requirement without a URL:
// name, optional [extras], optional comma-separated specifiers (optionally
// in parentheses), optional "; marker".
func ParseRequirement(s string) (Requirement, error) {
	if len(s) > maxRequirementLen {
		return Requirement{}, errdefs.New(errdefs.Invalid, "invalid requirement: longer than %d bytes", maxRequirementLen)
	}
	bad := func(format string, args ...any) (Requirement, error) {
		return Requirement{}, errdefs.New(errdefs.Invalid, "invalid requirement %q: "+format, append([]any{s}, args...)...)
	}
	var r Requirement
	rest := s
	if i := strings.IndexByte(rest, ';'); i >= 0 {
		r.Marker = strings.TrimSpace(rest[i+1:])
		rest = rest[:i]
		if r.Marker == "" {
			return bad("empty environment marker after \";\"")
		}
	}
	rest = strings.TrimSpace(rest)
	r.Name = namePattern().FindString(rest)
	if r.Name == "" {
		return bad("must start with a project name (letters, digits, \".\", \"-\", \"_\")")
	}
	r.Normalized = Normalize(r.Name)
	rest = strings.TrimSpace(rest[len(r.Name):])

	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return bad("unclosed \"[\" in extras")
		}
		for _, e := range strings.Split(rest[1:end], ",") {
			e = strings.TrimSpace(e)
			if e == "" && strings.TrimSpace(rest[1:end]) == "" {
				break // "name[]" has no extras
			}
			if !extraNamePattern().MatchString(e) {
				return bad("invalid extra name %q", e)
			}
			r.Extras = append(r.Extras, e)
		}
		rest = strings.TrimSpace(rest[end+1:])
	}
	if strings.HasPrefix(rest, "@") {
		return bad("direct URL references are not supported")
	}
	if strings.HasPrefix(rest, "(") {
		if !strings.HasSuffix(rest, ")") {
			return bad("unclosed \"(\"")
		}
		rest = strings.TrimSpace(rest[1 : len(rest)-1])
	}
	if rest == "" {
		return r, nil
	}
	for _, clause := range strings.Split(rest, ",") {
		spec, err := parseSpecifier(strings.TrimSpace(clause))
		if err != nil {
			return bad("%s", err.Error())
		}
		r.Specifiers = append(r.Specifiers, spec)
	}
	return r, nil
}

// parseSpecifier parses and checks one clause such as ">=1.0" or "==2.*".
func parseSpecifier(c string) (Specifier, error) {
	if c == "" {
		return Specifier{}, errdefs.New(errdefs.Invalid, "empty version clause")
	}
	var op string
	for _, o := range operators {
		if strings.HasPrefix(c, o) {
			op = o
			break
		}
	}
	if op == "" {
		return Specifier{}, errdefs.New(errdefs.Invalid, "%q does not start with a version operator (==, !=, <, <=, >, >=, ~=, ===)", c)
	}
	ver := strings.TrimSpace(c[len(op):])
	spec := Specifier{Op: op, Version: ver}
	if ver == "" {
		return spec, errdefs.New(errdefs.Invalid, "missing version after %q", op)
	}
	if op == "===" {
		if strings.ContainsAny(ver, " \t") {
			return spec, errdefs.New(errdefs.Invalid, "%q: arbitrary equality takes one word", c)
		}
		return spec, nil
	}
	if _, err := spec.parse(); err != nil {
		return spec, err
	}
	return spec, nil
}

// parsedSpec is a specifier with its version parsed.
type parsedSpec struct {
	op       string
	v        Version
	wildcard bool // "==X.*" or "!=X.*"
}

// parse checks the version against what op allows.
func (s Specifier) parse() (parsedSpec, error) {
	p := parsedSpec{op: s.Op}
	ver := s.Version
	if strings.HasSuffix(ver, ".*") {
		if s.Op != "==" && s.Op != "!=" {
			return p, errdefs.New(errdefs.Invalid, "%q: a \".*\" wildcard is only allowed with == and !=", s.String())
		}
		p.wildcard = true
		ver = strings.TrimSuffix(ver, ".*")
	}
	v, err := ParseVersion(ver)
	if err != nil {
		return p, errdefs.New(errdefs.Invalid, "%q: %s", s.String(), strings.TrimPrefix(err.Error(), "invalid version "+`"`+ver+`": `))
	}
	p.v = v
	switch {
	case p.wildcard && (v.Pre != "" || v.Post >= 0 || v.Dev >= 0 || v.Local != nil):
		return p, errdefs.New(errdefs.Invalid, "%q: a \".*\" wildcard may only follow a release number such as 2.1.*", s.String())
	case v.Local != nil && s.Op != "==" && s.Op != "!=":
		return p, errdefs.New(errdefs.Invalid, "%q: a local version label is only allowed with == and !=", s.String())
	case s.Op == "~=" && len(v.Release) < 2:
		return p, errdefs.New(errdefs.Invalid, "%q: ~= needs at least two release numbers, e.g. ~=1.4", s.String())
	}
	return p, nil
}

// mentionsPrerelease reports whether the specifier opts in to pre-releases.
func (p parsedSpec) mentionsPrerelease() bool {
	return p.op != "!=" && p.v.IsPrerelease()
}

// contains applies the specifier to c, ignoring pre-release policy.
func (p parsedSpec) contains(c Version) bool {
	switch p.op {
	case "==", "!=":
		var eq bool
		switch {
		case p.wildcard:
			eq = prefixMatch(c, p.v)
		case p.v.Local == nil:
			eq = c.Public().Compare(p.v) == 0
		default:
			eq = c.Compare(p.v) == 0
		}
		return eq == (p.op == "==")
	case "~=":
		prefix := Version{Epoch: p.v.Epoch, Release: p.v.Release[:len(p.v.Release)-1], Post: -1, Dev: -1}
		return c.Public().Compare(p.v) >= 0 && prefixMatch(c, prefix)
	case "<=":
		return c.Public().Compare(p.v) <= 0
	case ">=":
		return c.Public().Compare(p.v) >= 0
	case "<":
		if c.Public().Compare(p.v) >= 0 {
			return false
		}
		// <V excludes pre-releases of V itself unless V is one.
		return p.v.IsPrerelease() || !c.IsPrerelease() || c.Base().Compare(p.v.Base()) != 0
	case ">":
		if c.Public().Compare(p.v) <= 0 {
			return false
		}
		// >V excludes post-releases of V unless V is one, and V+local.
		if !p.v.IsPostrelease() && c.IsPostrelease() && c.Base().Compare(p.v.Base()) == 0 {
			return false
		}
		return c.Local == nil || c.Public().Compare(p.v) != 0
	}
	return false
}

// prefixMatch reports whether c's epoch equals prefix's and c's release,
// padded with zeros, starts with prefix's release ("==2.*", "~=1.4.2").
func prefixMatch(c, prefix Version) bool {
	if c.Epoch != prefix.Epoch {
		return false
	}
	for i, n := range prefix.Release {
		if at(c.Release, i) != n {
			return false
		}
	}
	return true
}

// SatisfiedBy reports whether version satisfies every specifier of r.
// "===" compares strings (case-insensitively); the others compare PEP 440
// versions. A pre-release satisfies r only if a specifier (other than !=)
// names a pre-release. The marker is ignored.
func (r Requirement) SatisfiedBy(version string) (bool, error) {
	var specs []parsedSpec
	allowPre := false
	for _, s := range r.Specifiers {
		if s.Op == "===" {
			if !strings.EqualFold(strings.TrimSpace(version), s.Version) {
				return false, nil
			}
			continue
		}
		p, err := s.parse()
		if err != nil {
			return false, err
		}
		allowPre = allowPre || p.mentionsPrerelease()
		specs = append(specs, p)
	}
	if len(specs) == 0 && len(r.Specifiers) > 0 {
		return true, nil // only === clauses, all matched as strings
	}
	v, err := ParseVersion(version)
	if err != nil {
		return false, err
	}
	if v.IsPrerelease() && !allowPre {
		return false, nil
	}
	for _, p := range specs {
		if !p.contains(v) {
			return false, nil
		}
	}
	return true, nil
}
