package image

import (
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/skill"
)

// maxDockerfile bounds the Dockerfile skillbox reads to check it.
const maxDockerfile = 1 << 20

// checkDockerfile reads what a build of the Dockerfile text would fetch
// and refuses, before any builder runs, what would reach beyond the
// context folder and loopback: a FROM (or COPY --from) naming a registry
// that is not loopback or a file outside contextDir, an image named
// through a variable (which only the builder could expand), ADD from a URL
// or with a variable or escape character that could make one
// (checkAddArgs), RUN --mount other than a tmpfs or a plain cache
// (checkRunMount: buildah before 1.35.1 binds host paths through a
// stage's links, CVE-2024-1753), RUN --network other than none (or, when
// the operator granted the build hosts, than none, default and host: the
// build's network namespace, whose only way out is the egress proxy) and
// RUN --security=insecure.
// It interprets nothing: the builder does the build; this only reads the
// instructions' names and flags. It returns the loopback registry images
// the build needs (the builder pulls them first, then builds with pulls
// disabled).
//
// The lexer is deliberately coarse: a line continued with the escape
// character is joined; heredoc bodies are read as instructions too, so
// they can only make it refuse more.
func checkDockerfile(text, contextDir string, granted bool) ([]Ref, error) {
	escape := byte('\\')
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	// Parser directives: comments "# key=value" at the very top.
	for _, l := range lines {
		d, ok := strings.CutPrefix(strings.TrimSpace(l), "#")
		if !ok {
			break
		}
		k, v, ok := strings.Cut(d, "=")
		if !ok {
			break
		}
		if strings.EqualFold(strings.TrimSpace(k), "escape") {
			if v = strings.TrimSpace(v); v == "`" {
				escape = '`'
			}
		}
	}
	var insts []string
	var cur strings.Builder
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if cur.Len() == 0 && (t == "" || strings.HasPrefix(t, "#")) {
			continue
		}
		if cur.Len() > 0 && strings.HasPrefix(t, "#") {
			continue // a comment inside a continued instruction
		}
		if strings.HasSuffix(t, string(escape)) {
			cur.WriteString(strings.TrimSuffix(t, string(escape)))
			cur.WriteByte(' ')
			continue
		}
		cur.WriteString(t)
		insts = append(insts, cur.String())
		cur.Reset()
	}
	if cur.Len() > 0 {
		insts = append(insts, cur.String())
	}

	stages := map[string]bool{}
	nstage := 0
	var pulls []Ref
	// checkImage checks an image a build would read: a stage, scratch, a
	// file inside the context or a loopback registry.
	checkImage := func(what, s string) error {
		if strings.ContainsAny(s, "${}") {
			return errdefs.New(errdefs.Invalid, "%s %q: an image named through a build variable cannot be checked before the build; write the image itself", what, s)
		}
		if stages[strings.ToLower(s)] || strings.EqualFold(s, "scratch") {
			return nil
		}
		if n, err := strconv.Atoi(s); err == nil && n >= 0 && n < nstage {
			return nil
		}
		ref, err := ParseRef(s, contextDir)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if ref.Local() {
			if err := insideContext(ref.Name, contextDir); err != nil {
				return fmt.Errorf("%s %s: %w", what, s, err)
			}
			return nil
		}
		host, _, _ := strings.Cut(ref.Name, "/")
		if !PlainHTTPAllowed(host) {
			if ref.Name != s {
				s += " (" + ref.Name + ")"
			}
			return errdefs.New(errdefs.Denied, "%s %s: a build reaches no registry but a loopback one (localhost, 127.0.0.0/8, ::1); name a local image instead (oci-archive:PATH, oci:DIR or docker-archive:PATH inside the context folder)", what, s)
		}
		pulls = append(pulls, ref)
		return nil
	}

	for _, inst := range insts {
		fields := strings.Fields(inst)
		kw := strings.ToUpper(fields[0])
		args := fields[1:]
		if kw == "ONBUILD" && len(args) > 0 {
			// Ignored by an OCI-format build, checked anyway.
			kw, args = strings.ToUpper(args[0]), args[1:]
		}
		flags, rest := splitFlags(args)
		switch kw {
		case "FROM":
			if len(rest) == 0 {
				return nil, errdefs.New(errdefs.Invalid, "Dockerfile: FROM without an image")
			}
			if err := checkImage("FROM", rest[0]); err != nil {
				return nil, err
			}
			if len(rest) >= 3 && strings.EqualFold(rest[1], "AS") {
				stages[strings.ToLower(rest[2])] = true
			}
			nstage++
		case "COPY", "ADD":
			for _, f := range flags {
				if v, ok := strings.CutPrefix(f, "--from="); ok {
					if err := checkImage(kw+" --from", v); err != nil {
						return nil, err
					}
				}
			}
			if kw == "ADD" {
				if err := checkAddArgs(rest, escape); err != nil {
					return nil, err
				}
			}
		case "RUN":
			for _, f := range flags {
				name, val, _ := strings.Cut(f, "=")
				switch name = strings.ToLower(name); {
				case name == "--network":
					switch v := val; {
					case v == "none":
					case granted && (v == "default" || v == "host"):
						// The build's namespace: only the egress proxy.
					case granted:
						return nil, errdefs.New(errdefs.Denied, "RUN %s: a granted build's RUN steps reach the network only through the egress proxy (--network=default, host or none)", f)
					default:
						return nil, errdefs.New(errdefs.Denied, "RUN %s: a build's RUN steps have no network unless the operator grants hosts ('skillbox image build --allow-net HOST[:PORT]')", f)
					}
				case name == "--security":
					if val != "sandbox" {
						return nil, errdefs.New(errdefs.Denied, "RUN %s: a build's RUN steps run confined, never insecure", f)
					}
				case name == "--mount":
					if err := checkRunMount(f, val); err != nil {
						return nil, err
					}
				}
			}
		}
	}
	if nstage == 0 {
		return nil, errdefs.New(errdefs.Invalid, "Dockerfile: no FROM")
	}
	return pulls, nil
}

// checkAddArgs refuses ADD arguments that are, or could become, a URL,
// which the builder would download itself, outside any RUN step's
// network rules: a URL as written (quotes removed, as the builder
// removes them), a build variable ($U, ${U}: ARG U=http://…) and an escape
// character (http:\/\/…, or \u003a in the JSON form), which the builder
// would resolve after this check. The destination is checked too: the
// lexer does not tell it apart from a source.
func checkAddArgs(args []string, escape byte) error {
	for _, a := range args {
		if strings.Contains(a, "$") {
			return errdefs.New(errdefs.Denied, "ADD %s: a build variable in ADD's arguments could expand to a URL, which the builder would download on the host's network; write the path itself (or use COPY, which downloads nothing)", a)
		}
		if strings.ContainsAny(a, "\\"+string(escape)) {
			return errdefs.New(errdefs.Denied, "ADD %s: an escape character in ADD's arguments could hide a URL (http:\\/\\/…); write the path without it (or use COPY, which downloads nothing)", a)
		}
		plain := strings.TrimLeft(strings.NewReplacer(`"`, "", "'", "").Replace(a), "[")
		if strings.Contains(plain, "://") || strings.HasPrefix(plain, "git@") {
			return errdefs.New(errdefs.Denied, "ADD %s: a build downloads nothing (the builder would fetch it on the host's network); put the file in the context folder", a)
		}
	}
	return nil
}

// runMountKeys are the RUN --mount types a build may use and the keys
// each may have. A bind mount is refused whatever it names: buildah before
// 1.35.1 (Debian 12 has 1.28.2) joins its source, from a stage or the
// context, onto a path on the host and lets the kernel follow the
// symbolic links on the way, so a stage's link to / binds the host's root
// into the step, writable (CVE-2024-1753). A cache mount is refused with
// from= or source= (the same join) and id= (a name joined onto the
// builder's cache folder, .. included); without them it is an empty
// folder in the build's private TMPDIR, removed with it. tmpfs is memory.
var runMountKeys = map[string]map[string]bool{
	"tmpfs": {"type": true, "target": true, "dst": true, "destination": true, "ro": true, "readonly": true, "rw": true,
		"size": true, "tmpfs-size": true, "mode": true, "tmpfs-mode": true},
	"cache": {"type": true, "target": true, "dst": true, "destination": true, "ro": true, "readonly": true, "rw": true,
		"sharing": true, "mode": true, "uid": true, "gid": true},
}

// checkRunMount checks the RUN flag f, --mount=spec: only a tmpfs, or a
// cache without from=, source= or id= (runMountKeys). Keys and the type
// are compared as written, so a variable, quotes or another spelling are
// refused, never expanded.
func checkRunMount(f, spec string) error {
	typ, seen := "", false
	for _, kv := range strings.Split(spec, ",") {
		if k, v, _ := strings.Cut(kv, "="); k == "type" {
			if seen {
				return errdefs.New(errdefs.Denied, "RUN %s: type= given twice", f)
			}
			typ, seen = v, true
		}
	}
	keys, ok := runMountKeys[typ]
	if !ok {
		return errdefs.New(errdefs.Denied, "RUN %s: a build's RUN steps may mount only type=tmpfs or type=cache (without from=, source= or id=): buildah before 1.35.1 follows a bind mount's symbolic links out of the stage or context it names, onto the host's files (CVE-2024-1753); COPY the files into the image instead", f)
	}
	for _, kv := range strings.Split(spec, ",") {
		k, _, _ := strings.Cut(kv, "=")
		if !keys[k] {
			return errdefs.New(errdefs.Denied, "RUN %s: %s= is refused in a %s mount (allowed: %s): a cache seeded from a stage or the context, or named by id, is a path buildah joins onto the host's (CVE-2024-1753)", f, k, typ, strings.Join(slices.Sorted(maps.Keys(keys)), ", "))
		}
	}
	return nil
}

// checkContextLinks refuses a symbolic link in the context folder that is
// absolute or leads out of it (directly, with .., or through other
// links; skill.LinkStaysInside): a bundle's links are checked when it is
// read, an operator's --context is not a bundle. A build reads only files
// inside its context; the link would be what reaches others.
func checkContextLinks(ctxDir string) error {
	return filepath.WalkDir(ctxDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return errdefs.Wrap(errdefs.Invalid, err, "build: context folder")
		}
		if d.Type()&fs.ModeSymlink == 0 {
			return nil
		}
		rel, err := filepath.Rel(ctxDir, p)
		if err != nil {
			return errdefs.Wrap(errdefs.Invalid, err, "build: context folder")
		}
		rel = filepath.ToSlash(rel)
		target, err := os.Readlink(p)
		if err != nil {
			return errdefs.Wrap(errdefs.Invalid, err, "build: context folder")
		}
		if !skill.LinkStaysInside(ctxDir, rel, target) {
			return errdefs.New(errdefs.Denied, "build: context %s: symbolic link %s -> %s is absolute or leads out of the context folder, and a build reads only files inside it: remove the link, or build from a folder without it", ctxDir, rel, target)
		}
		return nil
	})
}

// splitFlags splits an instruction's leading --flags from the rest.
func splitFlags(args []string) (flags, rest []string) {
	for i, a := range args {
		if !strings.HasPrefix(a, "--") {
			return args[:i], args[i:]
		}
	}
	return args, nil
}

// insideContext checks path, with its symbolic links resolved, is inside
// contextDir (itself resolved).
func insideContext(path, contextDir string) error {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		if os.IsNotExist(err) {
			return errdefs.New(errdefs.NotFound, "%s does not exist", path)
		}
		return errdefs.Wrap(errdefs.Invalid, err, path)
	}
	rel, err := filepath.Rel(contextDir, real)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return errdefs.New(errdefs.Denied, "%s is outside the context folder %s: a build reads only files inside it", path, contextDir)
	}
	return nil
}
