package image

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/skillbox-dev/skillbox/errdefs"
)

// maxDockerfile bounds the Dockerfile skillbox reads to check it.
const maxDockerfile = 1 << 20

// checkDockerfile reads what a build of the Dockerfile text would fetch
// and refuses, before any builder runs, what would reach beyond the
// context folder and loopback: a FROM (or COPY --from, RUN --mount from=)
// naming a registry that is not loopback or a file outside contextDir, an
// image named through a variable (which only the builder could expand), ADD
// from a URL, RUN --network other than none (or, when the operator granted
// the build hosts, than none, default and host: the build's network
// namespace, whose only way out is the egress proxy) and
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
				for _, src := range rest {
					if strings.Contains(src, "://") || strings.HasPrefix(src, "git@") {
						return nil, errdefs.New(errdefs.Denied, "ADD %s: a build downloads nothing (the builder would fetch it on the host's network); put the file in the context folder", src)
					}
				}
			}
		case "RUN":
			for _, f := range flags {
				switch {
				case strings.HasPrefix(f, "--network="):
					switch v := strings.TrimPrefix(f, "--network="); {
					case v == "none":
					case granted && (v == "default" || v == "host"):
						// The build's namespace: only the egress proxy.
					case granted:
						return nil, errdefs.New(errdefs.Denied, "RUN %s: a granted build's RUN steps reach the network only through the egress proxy (--network=default, host or none)", f)
					default:
						return nil, errdefs.New(errdefs.Denied, "RUN %s: a build's RUN steps have no network unless the operator grants hosts ('skillbox image build --allow-net HOST[:PORT]')", f)
					}
				case strings.HasPrefix(f, "--security="):
					if v := strings.TrimPrefix(f, "--security="); v != "sandbox" {
						return nil, errdefs.New(errdefs.Denied, "RUN %s: a build's RUN steps run confined, never insecure", f)
					}
				case strings.HasPrefix(f, "--mount="):
					for _, kv := range strings.Split(strings.TrimPrefix(f, "--mount="), ",") {
						if v, ok := strings.CutPrefix(kv, "from="); ok {
							if err := checkImage("RUN --mount from", v); err != nil {
								return nil, err
							}
						}
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
