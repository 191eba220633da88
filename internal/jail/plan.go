package jail

import (
	"fmt"
	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/jail/stage"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// mountOp is one step that builds the jail's root (stage.MountOp).
type mountOp = stage.MountOp

// plan turns host paths into mount steps that make each of them appear in
// the jail at the same path. Symlinks on the way (/lib64 -> usr/lib64 on a
// merged-/usr Debian) are recreated as symlinks, so the binary's compiled-in
// paths (PT_INTERP, prefix) keep working; the real targets are bound.
// Paths below an already bound directory are skipped.
func plan(paths []string) ([]mountOp, error) {
	var links []mountOp
	binds := map[string]bool{} // real path -> is a file
	for _, p := range paths {
		if err := walk(p, &links, binds, 0); err != nil {
			return nil, err
		}
	}
	var dirs []string
	for d := range binds {
		dirs = append(dirs, d)
	}
	slices.Sort(dirs) // a parent sorts before its children
	var ops []mountOp
	var kept []string
	for _, d := range dirs {
		if under(d, kept) {
			continue
		}
		kept = append(kept, d)
		ops = append(ops, mountOp{Kind: "bind", Src: d, Dst: d, File: binds[d]})
	}
	for _, l := range links {
		if !under(l.Dst, kept) && !slices.ContainsFunc(ops, func(o mountOp) bool { return o.Dst == l.Dst }) {
			ops = append(ops, l)
		}
	}
	return ops, nil
}

// under reports whether p is one of dirs or inside one of them.
func under(p string, dirs []string) bool {
	for _, d := range dirs {
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

// walk resolves p component by component, recording every symlink met.
func walk(p string, links *[]mountOp, binds map[string]bool, depth int) error {
	if depth > 40 {
		return fmt.Errorf("too many symlinks resolving %s", p)
	}
	p = filepath.Clean(p)
	if !filepath.IsAbs(p) {
		return fmt.Errorf("not an absolute path: %s", p)
	}
	parts := strings.Split(p[1:], "/")
	cur := ""
	for i, c := range parts {
		cur += "/" + c
		fi, err := os.Lstat(cur)
		if err != nil {
			return err
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			target, err := os.Readlink(cur)
			if err != nil {
				return err
			}
			*links = append(*links, mountOp{Kind: "symlink", Dst: cur, Target: target})
			next := target
			if !filepath.IsAbs(next) {
				next = filepath.Join(filepath.Dir(cur), target)
			}
			rest := strings.Join(parts[i+1:], "/")
			return walk(filepath.Join(next, rest), links, binds, depth+1)
		}
		if i == len(parts)-1 {
			binds[cur] = !fi.IsDir()
		}
	}
	return nil
}

// MountOp is one step that makes a host path appear in a root: a
// read-only bind of a real file or folder, or a symlink met on the way.
type MountOp = stage.MountOp

// RootMounts are the steps that assemble root with readPaths (a Spec's
// Root and ReadPaths) on an empty folder: for a Tree, its top-level
// entries, then the binds and read paths at their host paths (none may sit
// in an entry of the tree); else the binds and read paths, each at the
// same path, its real target bound, the symlinks on the way recreated,
// paths below a bound folder skipped. The jail follows them; so does a
// runtime that assembles a root of its own (the gvisor backend's OCI
// bundle).
func RootMounts(root Root, readPaths []string) ([]MountOp, error) {
	binds, err := root.Binds()
	if err != nil {
		return nil, errdefs.Wrap(errdefs.Invalid, err, "jail root")
	}
	paths := append(slices.Clone(binds), readPaths...)
	if tree, ok := root.(Tree); ok {
		// The root is a folder of the root provider's (an image).
		return treeMounts(tree.Tree(), paths)
	}
	ops, err := plan(paths)
	if err != nil {
		return nil, errdefs.Wrap(errdefs.Internal, err, "plan jail mounts")
	}
	return ops, nil
}
