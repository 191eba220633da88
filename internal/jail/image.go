package jail

import (
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/worker"
)

// Tree is a Root whose read-only part is a folder of its own shown as the
// jail's root, not host paths at the same paths: every top-level entry of
// Tree() appears read-only (nosuid, nodev) at /NAME, except the jail's own
// folders (OwnDirs), which the jail makes as always on top. Binds and
// Spec.ReadPaths are still bound at their host paths, where no entry of
// the tree is (the tree is read-only: nothing can be mounted inside it).
type Tree interface {
	Root
	// Tree is the host folder shown as the jail's root.
	Tree() string
}

// DefaultImagePath is the PATH an image without one gets (Docker's).
const DefaultImagePath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// caDirName is the top-level folder of caFileFallback, reserved in a
// tree's root for the egress proxy's CA.
const caDirName = ".skillbox-egress"

// Image is the root of an OCI image's unpacked root file system
// (internal/image's Cache): the jail's root shows the image's top-level
// entries, read-only, and nothing of the host's /; the program is the
// image's Python. Of the image's config only Env is honoured, filtered
// (ImageEnv); its Entrypoint, Cmd, WorkingDir and User are not: the
// program is the worker harness, it runs in ScratchDir as the jail's
// unprivileged id like every jail. Make one with NewImage.
type Image struct {
	// Rootfs is the host folder of the image's root file system.
	Rootfs string
	// Python is the interpreter's absolute path inside the image.
	Python string
	// Environ is the image's environment as honoured (ImageEnv).
	Environ []string
}

// NewImage makes the root of the image unpacked at rootfs, with env the
// image config's Env. python is the interpreter's absolute path inside the
// image; empty means python3 on the image's PATH (env's, else
// DefaultImagePath). Either way the path is resolved inside rootfs —
// symbolic links as the jail will see them, never followed out of it —
// and must be a regular, executable file; an image without one is
// invalid, naming what was looked for.
func NewImage(rootfs, python string, env []string) (Image, error) {
	if !filepath.IsAbs(rootfs) {
		return Image{}, errdefs.New(errdefs.Invalid, "jail: image root %q is not an absolute path", rootfs)
	}
	if fi, err := os.Stat(rootfs); err != nil || !fi.IsDir() {
		return Image{}, errdefs.New(errdefs.Invalid, "jail: image root %s is not a folder", rootfs)
	}
	img := Image{Rootfs: rootfs, Environ: ImageEnv(env)}
	if python != "" {
		if !path.IsAbs(python) || path.Clean(python) != python {
			return Image{}, errdefs.New(errdefs.Invalid, "jail: image python %q: want an absolute, clean path inside the image", python)
		}
		if err := img.checkProgram(python); err != nil {
			return Image{}, errdefs.New(errdefs.Invalid, "image python %s: %v", python, err)
		}
		img.Python = python
		return img, nil
	}
	search := DefaultImagePath
	for _, kv := range img.Environ {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			search = v
		}
	}
	var tried []string
	for _, dir := range filepath.SplitList(search) {
		if !path.IsAbs(dir) {
			continue // a relative PATH entry means the cwd, /scratch: no program there
		}
		cand := path.Join(dir, "python3")
		tried = append(tried, cand)
		if img.checkProgram(cand) == nil {
			img.Python = cand
			return img, nil
		}
	}
	return Image{}, errdefs.New(errdefs.Invalid, "the image has no python3 on its PATH (looked for %s); name the interpreter with container.python, or use an image with Python",
		strings.Join(tried, ", "))
}

// checkProgram checks p (a path in the image) resolves, inside Rootfs, to
// a regular executable file outside the jail's own folders.
func (r Image) checkProgram(p string) error {
	host, err := securejoin.SecureJoin(r.Rootfs, p)
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(r.Rootfs, host)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return fmt.Errorf("resolves outside the image")
	}
	if in := "/" + filepath.ToSlash(rel); under(in, OwnDirs()) || under(in, []string{"/" + caDirName}) {
		return fmt.Errorf("resolves to %s, which the jail's own folders cover", in)
	}
	fi, err := os.Lstat(host)
	if err != nil {
		return fmt.Errorf("not in the image")
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("not an executable file")
	}
	return nil
}

// Tree returns Rootfs.
func (r Image) Tree() string { return r.Rootfs }

// Binds returns nothing: the image's files are the tree.
func (r Image) Binds() ([]string, error) { return nil, nil }

// Program returns Python.
func (r Image) Program() string { return r.Python }

// Env is worker.Environ (HOME and TMPDIR at ScratchDir, LANG, the granted
// variables) over the image's Environ, except that the image's PATH
// replaces the worker's: the image decides where its programs are, the
// jail decides the rest, and a granted variable beats the image's. Malloc's
// settings are added as for the host's Python (worker.WithMallocTunables),
// unless the image or a grant sets GLIBC_TUNABLES itself.
func (r Image) Env(granted map[string]string) []string {
	env := map[string]string{}
	for _, kv := range r.Environ {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	imagePath, hasPath := env["PATH"]
	for _, kv := range worker.Environ(ScratchDir, granted) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	if hasPath {
		env["PATH"] = imagePath
	}
	out := make([]string, 0, len(env)+1)
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return worker.WithMallocTunables(out)
}

// ImageEnv is what a jail honours of an image config's Env: well-formed
// KEY=value entries (the last of a name wins), except the ones that would
// change how the program is loaded or which code Python runs — LD_* (the
// loader: LD_PRELOAD, LD_LIBRARY_PATH, ...), PYTHON* (PYTHONPATH,
// PYTHONHOME, PYTHONSTARTUP, ...) — and the proxy variables (*_PROXY in
// any case), which only a network grant sets. Sorted by name.
func ImageEnv(env []string) []string {
	kept := map[string]string{}
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !envName(k) || strings.ContainsRune(v, 0) {
			continue
		}
		up := strings.ToUpper(k)
		if strings.HasPrefix(up, "LD_") || strings.HasPrefix(up, "PYTHON") || strings.HasSuffix(up, "_PROXY") {
			continue
		}
		kept[k] = v
	}
	out := make([]string, 0, len(kept))
	for _, k := range slices.Sorted(maps.Keys(kept)) {
		out = append(out, k+"="+kept[k])
	}
	return out
}

// envName reports whether k is a portable variable name.
func envName(k string) bool {
	if k == "" || k[0] >= '0' && k[0] <= '9' {
		return false
	}
	for _, c := range k {
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// treeOps are the mount steps that show tree's top-level entries at /NAME:
// folders and files bound, symbolic links recreated (their targets are
// resolved in the jail, whose root is the tree's), anything else skipped.
// The jail's own folders, /sys and the egress CA's are left to the jail.
func treeOps(tree string) ([]mountOp, error) {
	ents, err := os.ReadDir(tree)
	if err != nil {
		return nil, err
	}
	var ops []mountOp
	for _, e := range ents {
		dst := "/" + e.Name()
		if under(dst, OwnDirs()) || e.Name() == caDirName || e.Name() == "sys" {
			// An image's /sys is where a container runtime mounts
			// sysfs; the jail shows its own (stage.THPDir) there.
			continue
		}
		src := filepath.Join(tree, e.Name())
		switch t := e.Type(); {
		case t.IsDir():
			ops = append(ops, mountOp{Kind: "bind", Src: src, Dst: dst})
		case t.IsRegular():
			ops = append(ops, mountOp{Kind: "bind", Src: src, Dst: dst, File: true})
		case t&os.ModeSymlink != 0:
			target, err := os.Readlink(src)
			if err != nil {
				return nil, err
			}
			ops = append(ops, mountOp{Kind: "symlink", Dst: dst, Target: target})
		}
	}
	return ops, nil
}

// treeMounts plans the root of a Tree: its entries, then binds (the
// root's and the read paths) at their host paths, none of which may sit
// in an entry of the tree.
func treeMounts(tree string, binds []string) ([]mountOp, error) {
	base, err := treeOps(tree)
	if err != nil {
		return nil, errdefs.Wrap(errdefs.Invalid, err, "jail root tree")
	}
	more, err := plan(binds)
	if err != nil {
		return nil, errdefs.Wrap(errdefs.Internal, err, "plan jail mounts")
	}
	taken := make([]string, 0, len(base))
	for _, op := range base {
		taken = append(taken, op.Dst)
	}
	for _, op := range more {
		if under(op.Dst, taken) {
			top := "/" + strings.SplitN(op.Dst[1:], "/", 2)[0]
			return nil, errdefs.New(errdefs.Unsupported, "jail: %s cannot be shown at its host path: the image's %s is there, and the image is read-only", op.Dst, top)
		}
	}
	return append(base, more...), nil
}
