package skillenv

import (
	"bufio"
	"bytes"
	"context"
	"net/url"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/skillbox-dev/skillbox/errdefs"
)

// PyPI is where pip fetches from when nothing names an index: its simple
// index and the host that serves its files.
var PyPI = []string{"https://pypi.org/simple", "https://files.pythonhosted.org"}

// sources are where a build may fetch from: index and find-links URLs
// (whose hosts the build reaches through the egress proxy), and local
// paths it reads (find-links folders, pip's certificate files).
type sources struct {
	urls  []string
	paths []string
}

// resolveSources asks pip (the trusted wheel, run with python in isolated
// mode and the operator's configuration) what its effective configuration
// is — `pip config list`, so that pip, not skillbox, reads pip.conf — and
// returns the sources it names.
func resolveSources(ctx context.Context, python, pip string, idx Index) (sources, error) {
	cmd := exec.CommandContext(ctx, python, "-I", filepath.Join(pip, "pip"), "config", "list")
	cmd.Env = append(append([]string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8"}, idx.Locate...), idx.Vars...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return sources{}, errdefs.New(errdefs.Unavailable, "pip config list: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return parseConfigList(out)
}

// parseConfigList reads `pip config list` ("SECTION.KEY='VALUE'" lines,
// VALUE a Python string literal) into the sources pip install would use:
// for each key the environment's value (":env:"), else the install
// section's, else the global one's — pip's precedence for one command.
func parseConfigList(out []byte) (sources, error) {
	rank := map[string]int{"global": 1, "install": 2, ":env:": 3}
	type val struct {
		v    string
		rank int
	}
	eff := map[string]val{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		i := strings.LastIndexByte(k, '.')
		if i < 0 {
			continue
		}
		section, key := k[:i], k[i+1:]
		r, ok := rank[section]
		if !ok {
			continue
		}
		s, err := pyString(v)
		if err != nil {
			return sources{}, errdefs.New(errdefs.Unavailable, "pip config list: cannot read %q: %v", RedactURLs(line), err)
		}
		if cur, ok := eff[key]; !ok || r > cur.rank {
			eff[key] = val{s, r}
		}
	}
	var src sources
	noIndex := truthy(eff["no-index"].v)
	if !noIndex {
		if u := eff["index-url"].v; u != "" {
			src.urls = append(src.urls, u)
		} else {
			src.urls = append(src.urls, PyPI...)
		}
		src.urls = append(src.urls, strings.Fields(eff["extra-index-url"].v)...)
	}
	for _, f := range strings.Fields(eff["find-links"].v) {
		u, err := url.Parse(f)
		switch {
		case err == nil && (u.Scheme == "http" || u.Scheme == "https"):
			src.urls = append(src.urls, f)
		case err == nil && u.Scheme == "file":
			src.paths = append(src.paths, u.Path)
		case filepath.IsAbs(f):
			src.paths = append(src.paths, f)
		default:
			return sources{}, errdefs.New(errdefs.Invalid, "pip's find-links %q is neither a URL nor an absolute path: a build runs elsewhere than the working folder", f)
		}
	}
	for _, k := range []string{"cert", "client-cert"} {
		if p := eff[k].v; p != "" {
			src.paths = append(src.paths, p)
		}
	}
	slices.Sort(src.paths)
	src.paths = slices.Compact(src.paths)
	return src, nil
}

// pyString decodes the Python string literal pip prints ('...' with
// backslash escapes).
func pyString(s string) (string, error) {
	if len(s) >= 2 && s[0] == '\'' && s[len(s)-1] == '\'' {
		body := strings.ReplaceAll(s[1:len(s)-1], `"`, `\"`)
		body = strings.ReplaceAll(body, `\'`, `'`)
		return strconv.Unquote(`"` + body + `"`)
	}
	return strconv.Unquote(s)
}

// truthy is pip's reading of a boolean option's string.
func truthy(v string) bool {
	switch strings.ToLower(v) {
	case "1", "true", "yes", "on", "y":
		return true
	}
	return false
}
