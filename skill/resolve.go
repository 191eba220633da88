package skill

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/skillbox-dev/skillbox/errdefs"
)

// Tier says where a skill comes from; policy trusts tiers differently.
type Tier string

// The tiers.
const (
	// TierBundled: shipped with skillbox.
	TierBundled Tier = "bundled"
	// TierProject: found in ./skills of the working directory or a parent, or
	// in paths.project of .skillware.yaml.
	TierProject Tier = "project"
	// TierExternal: from SKILLWARE_SKILL_PATH or paths.external of
	// .skillware.yaml, or a path outside every root. A skill folder inside
	// an external root is external even if a project root holds it too.
	TierExternal Tier = "external"
)

// Root is a folder holding skills as <Path>/<category>/<name>/.
type Root struct {
	// Path is the root folder.
	Path string
	// Tier is the tier of every skill found under Path.
	Tier Tier
}

// SkillPathEnv is the environment variable listing external skill roots.
const SkillPathEnv = "SKILLWARE_SKILL_PATH"

// Skill is a resolved, loaded skill.
type Skill struct {
	// ID is "category/name".
	ID string
	// Tier is the tier of the root it was found in (external for a path
	// outside every root).
	Tier Tier
	// Root is the root it was found in, or "" for a path outside every root.
	Root string
	// Dir is the absolute skill folder.
	Dir string
	// Bundle is the loaded bundle.
	Bundle *Bundle
	// Digest is the bundle's content digest (see Digest).
	Digest string
	// Warnings report shadowing and naming problems; they do not stop use.
	Warnings []string

	// byID is true when resolving ID (with the roots that found the
	// skill) finds Dir again: see Ref.
	byID bool
}

// Ref is how a command printed in a hint ('skillbox trust REF', 'skillbox
// lock REF', ...) names s so that it resolves to this same folder: its ID
// when the resolver that found s resolves the ID to Dir, else Dir. A
// skill named by a path may have an id that names another folder (one
// nested deeper in a root, or shadowed by an earlier root), and one the
// resolver did not find has only its folder. Quote it for a shell.
func (s *Skill) Ref() string {
	if s.byID {
		return s.ID
	}
	return s.Dir
}

// Resolver finds skills in ordered roots. The zero value has no roots and
// resolves only paths.
type Resolver struct {
	// Roots are searched in order; the first match wins.
	Roots []Root
	// Warnings are problems with the roots (FoundRoots.Warnings): Resolve
	// adds them to the Warnings of every skill it returns and to its
	// not-found errors, since a misplaced root is a likely reason.
	Warnings []string
}

var idSegment = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_.-]+$`) })

// ValidID reports whether id is a well-formed skill id: two segments of
// letters, digits, '_', '.' and '-' separated by '/', neither "." nor "..".
func ValidID(id string) bool {
	cat, name, ok := strings.Cut(id, "/")
	return ok && validSegment(cat) && validSegment(name)
}

func validSegment(s string) bool {
	return idSegment().MatchString(s) && s != "." && s != ".."
}

// Resolve finds and loads the skill ref names. The rule:
//
//   - A ref starting with "/", "./", "../" or "~" (or equal to "." or "..")
//     is a path to a skill folder.
//   - An id-shaped ref ("category/name") is looked up in the roots; the first
//     root holding <root>/<category>/<name>/manifest.yaml wins. If no root
//     has it but the ref names a folder with a manifest.yaml relative to the
//     working directory, that folder is used.
//   - Any other ref containing a path separator is a path if it exists.
//   - Anything else is errdefs.Invalid.
//
// A path gets the root its id would: the root under which it is
// <category>/<name>, else the most specific root holding it at any depth
// (then its id is made of its last two path elements), else none and the
// external tier. A skill folder that several roots hold (nested roots,
// as written or through symlinks) gets the strictest of their tiers,
// however it is named: a skill inside an external root is external.
// Not found is errdefs.NotFound and lists
// the roots searched; a broken bundle is errdefs.Invalid.
func (r *Resolver) Resolve(ref string) (*Skill, error) {
	s, err := r.resolve(ref)
	if err != nil {
		if len(r.Warnings) > 0 && errdefs.KindOf(err) == errdefs.NotFound {
			err = errdefs.New(errdefs.NotFound, "%v; check the roots: %s", err, strings.Join(r.Warnings, "; "))
		}
		return nil, err
	}
	s.byID = r.findsByID(s)
	s.Warnings = append(s.Warnings, r.Warnings...)
	return s, nil
}

// findsByID reports whether resolving s.ID finds s.Dir, by the rule that
// resolve applies to an id: the first root holding it. A skill outside
// every root has no id that names it: its id's fallback to a folder
// relative to the working directory holds only from there.
func (r *Resolver) findsByID(s *Skill) bool {
	if s.Root == "" || !ValidID(s.ID) {
		return false
	}
	for _, root := range r.Roots {
		dir := filepath.Join(root.Path, filepath.FromSlash(s.ID))
		if isSkillDir(dir) {
			return sameDir(dir, s.Dir)
		}
	}
	return false
}

func (r *Resolver) resolve(ref string) (*Skill, error) {
	if ref == "" {
		return nil, errdefs.New(errdefs.Invalid, "empty skill reference; want category/name or a path to a skill folder")
	}
	if looksLikePath(ref) {
		return r.resolvePath(ref)
	}
	if ValidID(ref) {
		for i, root := range r.Roots {
			dir := filepath.Join(root.Path, filepath.FromSlash(ref))
			if isSkillDir(dir) {
				return r.load(ref, i, dir)
			}
		}
		if isSkillDir(ref) {
			return r.resolvePath(ref)
		}
		msg := fmt.Sprintf("skill %q not found; searched %s", ref, r.describeRoots())
		if alt := r.suggest(ref); len(alt) > 0 {
			msg += "; did you mean " + strings.Join(alt, " or ") + "?"
		}
		return nil, errdefs.New(errdefs.NotFound, "%s", msg)
	}
	if strings.ContainsRune(ref, '/') || strings.ContainsRune(ref, filepath.Separator) {
		if _, err := os.Stat(ref); err == nil {
			return r.resolvePath(ref)
		}
		return nil, errdefs.New(errdefs.NotFound, "no skill folder at %s, and %q is not a skill id (category/name of letters, digits, _ . -)", ref, ref)
	}
	return nil, errdefs.New(errdefs.Invalid, "invalid skill reference %q: want an id category/name (letters, digits, _ . -) or a path to a skill folder", ref)
}

func looksLikePath(ref string) bool {
	if ref == "." || ref == ".." || strings.HasPrefix(ref, "~") || filepath.IsAbs(ref) {
		return true
	}
	for _, p := range []string{"/", "./", "../", "." + string(filepath.Separator), ".." + string(filepath.Separator)} {
		if strings.HasPrefix(ref, p) {
			return true
		}
	}
	return false
}

func (r *Resolver) describeRoots() string {
	if len(r.Roots) == 0 {
		return "no roots (none configured)"
	}
	parts := make([]string, len(r.Roots))
	for i, root := range r.Roots {
		parts[i] = fmt.Sprintf("%s (%s)", root.Path, root.Tier)
	}
	return strings.Join(parts, ", ")
}

func isSkillDir(dir string) bool {
	fi, err := os.Stat(filepath.Join(dir, ManifestFile))
	return err == nil && !fi.IsDir()
}

// resolvePath loads the skill folder at ref.
func (r *Resolver) resolvePath(ref string) (*Skill, error) {
	p := ref
	if p == "~" || strings.HasPrefix(p, "~/") {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, errdefs.New(errdefs.Invalid, "skill path %s: cannot expand ~: %v", ref, err)
		}
		p = filepath.Join(home, strings.TrimPrefix(p, "~"))
	} else if strings.HasPrefix(p, "~") {
		return nil, errdefs.New(errdefs.Invalid, "skill path %s: ~user is not supported; write the full path", ref)
	}
	dir, err := filepath.Abs(p)
	if err != nil {
		return nil, errdefs.New(errdefs.Invalid, "skill path %s: %v", ref, err)
	}
	if strings.ContainsFunc(dir, unicode.IsControl) {
		// Its folder names become the skill's id and its path, which the
		// trust review, list and the audit log show one per line.
		return nil, errdefs.New(errdefs.Invalid, "skill path %q holds a control character (a newline, a tab, ...); rename the folder", dir)
	}
	if !utf8.ValidString(dir) {
		// The trust store and the audit log are JSON, which would record
		// another id and path than the skill's.
		return nil, errdefs.New(errdefs.Invalid, "skill path %q is not valid UTF-8; rename the folder", dir)
	}
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, errdefs.New(errdefs.NotFound, "no skill folder at %s", dir)
	case err != nil:
		return nil, errdefs.New(errdefs.Invalid, "skill path %s: %v", dir, err)
	case !fi.IsDir():
		return nil, errdefs.New(errdefs.Invalid, "%s is not a skill folder (not a directory)", dir)
	case !isSkillDir(dir):
		return nil, errdefs.New(errdefs.Invalid, "%s is not a skill folder: no %s", dir, ManifestFile)
	}
	if i, id, ok := r.rootOf(dir); ok {
		if id != "" {
			return r.load(id, i, dir)
		}
		root := r.Roots[i]
		return newSkill(lastTwo(dir), r.tierOf(root.Tier, dir), root.Path, dir)
	}
	return newSkill(lastTwo(dir), TierExternal, "", dir)
}

// lastTwo is the id of a skill folder outside every root: its last two
// path elements.
func lastTwo(dir string) string {
	return filepath.Base(filepath.Dir(dir)) + "/" + filepath.Base(dir)
}

// rootOf picks the root of the skill folder dir named by its path, so
// that a path gets the root its id would: the first root under which dir
// is exactly <category>/<name> (id is then that), else the most specific
// root holding dir at any depth (id is ""). A root holds dir if dir is
// inside it as written or once symlinks are resolved.
func (r *Resolver) rootOf(dir string) (i int, id string, ok bool) {
	best, depth := -1, 0
	for j, root := range r.Roots {
		n, rel := depthIn(root.Path, dir)
		switch {
		case n < 0:
			continue
		case n == 2:
			return j, rel, true
		case best < 0 || n < depth:
			best, depth = j, n
		}
	}
	if best < 0 {
		return 0, "", false
	}
	return best, "", true
}

// depthIn says how many path elements dir is below root (-1: not inside
// it), comparing the paths as written and, failing that, with symlinks
// resolved; rel is the slash path of dir under root when it is two deep.
func depthIn(root, dir string) (n int, rel string) {
	rp, err := filepath.Abs(root)
	if err != nil {
		return -1, ""
	}
	if n, rel := relDepth(rp, dir); n >= 0 {
		return n, rel
	}
	realRoot, err1 := filepath.EvalSymlinks(rp)
	realDir, err2 := filepath.EvalSymlinks(dir)
	if err1 != nil || err2 != nil {
		return -1, ""
	}
	return relDepth(realRoot, realDir)
}

func relDepth(root, p string) (int, string) {
	if !within(root, p) {
		return -1, ""
	}
	rel, _ := filepath.Rel(root, p)
	if rel == "." {
		return 0, ""
	}
	rel = filepath.ToSlash(rel)
	return strings.Count(rel, "/") + 1, rel
}

// tierOf is tier made at least as strict as the tier of every root
// holding dir: a skill inside an external root is external even when a
// project root holds it too, however it is named (an external root
// nested in a project root, a project root inside an external one).
func (r *Resolver) tierOf(tier Tier, dir string) Tier {
	for _, root := range r.Roots {
		if n, _ := depthIn(root.Path, dir); n >= 0 && strictness(root.Tier) > strictness(tier) {
			tier = root.Tier
		}
	}
	return tier
}

// strictness orders the tiers by how much trust running them needs:
// bundled, then project, then external (the one the trust gate checks).
func strictness(t Tier) int {
	switch t {
	case TierBundled:
		return 0
	case TierExternal:
		return 2
	}
	return 1
}

// within reports whether p is root or inside it (lexically).
func within(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// load builds the skill id found in root i at dir, with shadowing warnings
// for the same id in the roots after i.
func (r *Resolver) load(id string, i int, dir string) (*Skill, error) {
	root := r.Roots[i]
	s, err := newSkill(id, r.tierOf(root.Tier, dir), root.Path, dir)
	if err != nil {
		return nil, err
	}
	for _, other := range r.Roots[i+1:] {
		odir := filepath.Join(other.Path, filepath.FromSlash(id))
		if isSkillDir(odir) && !sameDir(odir, s.Dir) {
			s.Warnings = append(s.Warnings, shadowWarning(id, s.Dir, root.Tier, odir, other.Tier))
		}
	}
	return s, nil
}

func sameDir(a, b string) bool {
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}

func shadowWarning(id, dir string, tier Tier, odir string, otier Tier) string {
	return fmt.Sprintf("skill %s in %s (%s) shadows the %s skill at %s", id, dir, tier, otier, odir)
}

// newSkill loads and digests the bundle at dir.
func newSkill(id string, tier Tier, root, dir string) (*Skill, error) {
	b, err := Load(dir)
	if err != nil {
		return nil, err
	}
	entries, err := Files(b.Dir)
	if err != nil {
		return nil, err
	}
	return assemble(id, tier, root, b, entries)
}

// assemble builds the skill of bundle b from entries, the file list of its
// folder read after b (the second of newSkill's two reads), which its digest
// is taken from. It refuses, as Seal does (errdefs.Denied), a skill whose
// manifest, instructions or card changed between the two reads: what trust,
// lock and inspect show of it would not be what its digest pins.
func assemble(id string, tier Tier, root string, b *Bundle, entries []FileEntry) (*Skill, error) {
	s := &Skill{ID: id, Tier: tier, Root: root, Dir: b.Dir, Bundle: b, Digest: DigestEntries(entries)}
	if detail := b.differs(entries); detail != "" {
		return nil, changed(s, detail)
	}
	cat, name, _ := strings.Cut(id, "/")
	// Skillware manifests name a skill either by its folder ("wallet_screening")
	// or by its whole id ("optimization/prompt_rewriter"); both match.
	if m := b.Manifest; m.Name != name && m.Name != id {
		s.Warnings = append(s.Warnings, fmt.Sprintf("manifest name %q does not match folder %q (or id %q)", m.Name, name, id))
	}
	if m := b.Manifest; m.Category != "" && m.Category != cat {
		s.Warnings = append(s.Warnings, fmt.Sprintf("manifest category %q does not match folder %q", m.Category, cat))
	}
	s.Warnings = append(s.Warnings, b.Manifest.misspelledFields()...)
	return s, nil
}

// List loads every skill in every root, sorted by id. For an id found in
// several roots the first wins and the others appear in its Warnings. A
// skill that fails to load, or a folder whose name is not a valid id
// segment, yields an error naming its path instead of stopping the listing;
// errors are sorted by message. Missing roots are skipped.
func (r *Resolver) List() ([]*Skill, []error) {
	byID, errs := r.folders()
	ids := make([]string, 0, len(byID))
	for id := range byID {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var skills []*Skill
	for _, id := range ids {
		fs := byID[id]
		win := fs[0]
		root := r.Roots[win.root]
		s, err := newSkill(id, r.tierOf(root.Tier, win.dir), root.Path, win.dir)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.byID = true // the first root's, as Resolve(id) finds it
		for _, o := range fs[1:] {
			if !sameDir(o.dir, s.Dir) {
				s.Warnings = append(s.Warnings, shadowWarning(id, s.Dir, root.Tier, o.dir, r.Roots[o.root].Tier))
			}
		}
		skills = append(skills, s)
	}
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return skills, errs
}

// found is a skill folder in root r.Roots[root].
type found struct {
	root int
	dir  string
}

// folders finds every skill folder of the roots by id, in root order, and
// the errors of what is not one.
func (r *Resolver) folders() (map[string][]found, []error) {
	byID := map[string][]found{}
	var errs []error
	for i, root := range r.Roots {
		cats, err := os.ReadDir(root.Path)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, errdefs.New(errdefs.Invalid, "skill root %s: %v", root.Path, err))
			}
			continue
		}
		for _, c := range cats {
			catDir := filepath.Join(root.Path, c.Name())
			if skipName(c.Name()) || !isDir(catDir) {
				continue
			}
			names, err := os.ReadDir(catDir)
			if err != nil {
				errs = append(errs, errdefs.New(errdefs.Invalid, "skill category %s: %v", catDir, err))
				continue
			}
			for _, n := range names {
				dir := filepath.Join(catDir, n.Name())
				if skipName(n.Name()) || !isDir(dir) || !isSkillDir(dir) {
					continue
				}
				id := c.Name() + "/" + n.Name()
				if !ValidID(id) {
					errs = append(errs, errdefs.New(errdefs.Invalid, "skill folder %s: %q is not a valid skill id (letters, digits, _ . -)", dir, id))
					continue
				}
				byID[id] = append(byID[id], found{i, dir})
			}
		}
	}
	return byID, errs
}

// suggest names up to three ids of the roots' skills that id may have
// been meant as: the same name in another category, or an id at most a
// few edits away (a typo).
func (r *Resolver) suggest(id string) []string {
	byID, _ := r.folders()
	_, name, _ := strings.Cut(id, "/")
	type cand struct {
		id string
		d  int
	}
	var cs []cand
	for other := range byID {
		_, oname, _ := strings.Cut(other, "/")
		d := editDistance(strings.ToLower(id), strings.ToLower(other))
		switch {
		case d <= typoEdits(id):
		case strings.EqualFold(oname, name):
			d = 0 // the category was the slip
		default:
			continue
		}
		cs = append(cs, cand{other, d})
	}
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].d != cs[j].d {
			return cs[i].d < cs[j].d
		}
		return cs[i].id < cs[j].id
	})
	var out []string
	for i := 0; i < len(cs) && i < 3; i++ {
		out = append(out, cs[i].id)
	}
	return out
}

// typoEdits is how many edits away from a name of len(s) bytes another
// still reads as a typo of it, not another name: one per five bytes, at
// least one.
func typoEdits(s string) int { return max(1, len(s)/5) }

// editDistance is the Levenshtein distance between a and b, in bytes (ids
// are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func skipName(name string) bool {
	return strings.HasPrefix(name, ".") || name == "__pycache__"
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
