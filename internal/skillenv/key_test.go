package skillenv

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/skillbox-dev/skillbox/errdefs"
)

func TestNormalized(t *testing.T) {
	got, err := Normalized([]string{"Requests>=2.0", "beautifulsoup4", "requests >= 2.0", "PyYAML"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"beautifulsoup4", "pyyaml", "requests>=2.0"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Normalized (-want +got):\n%s", diff)
	}
	if _, err := Normalized([]string{"ok", "--index-url=http://evil"}); errdefs.KindOf(err) != errdefs.Invalid {
		t.Errorf("an option as a requirement: %v, want invalid", err)
	}
}

// The key covers every input that changes what the build makes, and
// nothing that does not (spelling and order of requirements).
func TestKey(t *testing.T) {
	base := Request{Python: "/usr/bin/python3.11", PythonVersion: "3.11.2", Requirements: []string{"a>=1", "b"}}
	k0, err := base.Key()
	if err != nil {
		t.Fatal(err)
	}
	same := base
	same.Requirements = []string{"B", "A >= 1", "a>=1"}
	if k, _ := same.Key(); k != k0 {
		t.Errorf("the same requirements, spelt and ordered otherwise, give another key")
	}
	for name, change := range map[string]func(*Request){
		"python":       func(r *Request) { r.Python = "/opt/python3" },
		"version":      func(r *Request) { r.PythonVersion = "3.11.3" },
		"requirements": func(r *Request) { r.Requirements = []string{"a>=2", "b"} },
		"index":        func(r *Request) { r.Index.Vars = []string{"PIP_INDEX_URL=http://127.0.0.1:1/simple"} },
		"config file":  func(r *Request) { r.Index.Files = []ConfigFile{{Path: "/etc/pip.conf", Digest: "x"}} },
		"sdists":       func(r *Request) { r.Sdists = true },
	} {
		r := base
		change(&r)
		if k, err := r.Key(); err != nil || k == k0 {
			t.Errorf("%s: key unchanged (%v)", name, err)
		}
	}
}

// An environment's digest is what it holds: its key and the installed
// set with each archive's hash. The same set, in any order, has the same
// digest; another version, another archive under the same version, or
// another key does not; and a digest is never the key.
func TestDigest(t *testing.T) {
	const h1, h2 = "sha256=" + "11111111111111111111111111111111111111111111111111111111111111aa", "sha256=" + "22222222222222222222222222222222222222222222222222222222222222bb"
	base := Env{Key: "sha256:" + strings.Repeat("ab", 32), Resolved: []Package{{"alpha", "1.0", h1}, {"beta", "2.0", h2}}}
	d0 := base.Digest()
	if !strings.HasPrefix(d0, "sha256:") || len(d0) != len("sha256:")+64 || d0 == base.Key {
		t.Fatalf("digest %q of key %q", d0, base.Key)
	}
	same := base
	same.Resolved = []Package{base.Resolved[1], base.Resolved[0]}
	same.Dir, same.Built = "/elsewhere", time.Now()
	if d := same.Digest(); d != d0 {
		t.Errorf("the same set in another order, built elsewhere: digest %s, want %s", d, d0)
	}
	for name, change := range map[string]func(*Env){
		"version": func(e *Env) { e.Resolved = []Package{{"alpha", "1.1", h1}, base.Resolved[1]} },
		"archive": func(e *Env) { e.Resolved = []Package{{"alpha", "1.0", h2}, base.Resolved[1]} },
		"no hash": func(e *Env) { e.Resolved = []Package{{"alpha", "1.0", ""}, base.Resolved[1]} },
		"added":   func(e *Env) { e.Resolved = append(slices.Clone(base.Resolved), Package{"gamma", "1", h1}) },
		"removed": func(e *Env) { e.Resolved = base.Resolved[:1] },
		"key":     func(e *Env) { e.Key = "sha256:" + strings.Repeat("cd", 32) },
	} {
		e := base
		change(&e)
		if e.Digest() == d0 {
			t.Errorf("%s: digest unchanged", name)
		}
	}
}

func TestIndexFromEnv(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	userConf := filepath.Join(home, ".config", "pip", "pip.conf")
	legacy := filepath.Join(home, ".pip", "pip.conf")
	envConf := filepath.Join(dir, "env.conf")
	for _, f := range []string{userConf, legacy, envConf} {
		os.MkdirAll(filepath.Dir(f), 0o755)
		os.WriteFile(f, []byte("[global]\n"), 0o644)
	}
	env := func(vars map[string]string) func(string) string {
		return func(k string) string { return vars[k] }
	}
	paths := func(idx Index) []string {
		var p []string
		for _, f := range idx.Files {
			if filepath.Dir(f.Path) != "/etc" && !filepath.HasPrefix(f.Path, "/etc/xdg") {
				p = append(p, f.Path)
			}
		}
		return p
	}
	idx, err := IndexFromEnv(env(map[string]string{"HOME": home, "XDG_CONFIG_DIRS": dir, "PIP_INDEX_URL": "http://127.0.0.1:1/simple", "PIP_USER": "1"}))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{legacy, userConf}, paths(idx)); diff != "" {
		t.Errorf("user files (-want +got):\n%s", diff)
	}
	if !slices.Contains(idx.Vars, "PIP_INDEX_URL=http://127.0.0.1:1/simple") || slices.ContainsFunc(idx.Vars, func(v string) bool { return v == "PIP_USER=1" }) {
		t.Errorf("vars %v: want the index, not unrelated options", idx.Vars)
	}
	// PIP_CONFIG_FILE that exists replaces the user files (pip's rule).
	idx, _ = IndexFromEnv(env(map[string]string{"HOME": home, "XDG_CONFIG_DIRS": dir, "PIP_CONFIG_FILE": envConf}))
	if diff := cmp.Diff([]string{envConf}, paths(idx)); diff != "" {
		t.Errorf("PIP_CONFIG_FILE (-want +got):\n%s", diff)
	}
	// ...and os.DevNull means none at all.
	if idx, _ = IndexFromEnv(env(map[string]string{"HOME": home, "PIP_CONFIG_FILE": os.DevNull})); len(idx.Files) != 0 {
		t.Errorf("PIP_CONFIG_FILE=%s: files %v", os.DevNull, idx.Files)
	}
	// A file that exists but cannot be read is an error, not skipped.
	if os.Geteuid() != 0 {
		os.Chmod(userConf, 0)
		if _, err := IndexFromEnv(env(map[string]string{"HOME": home})); err == nil {
			t.Error("an unreadable pip.conf was skipped")
		}
	}
}

func TestParseConfigList(t *testing.T) {
	for _, tt := range []struct {
		name, out string
		want      sources
		bad       bool
	}{
		{name: "defaults", want: sources{urls: PyPI}},
		{
			name: "precedence",
			out: "global.index-url='http://g/simple'\ninstall.index-url='http://i/simple'\n:env:.index-url='http://e/simple'\n" +
				"global.extra-index-url='\\nhttp://x1/a\\nhttp://x2/b'\nglobal.cert='/etc/ssl/c.pem'\n",
			want: sources{urls: []string{"http://e/simple", "http://x1/a", "http://x2/b"}, paths: []string{"/etc/ssl/c.pem"}},
		},
		{
			name: "no index",
			out:  ":env:.no-index='1'\nglobal.index-url='http://g/simple'\n:env:.find-links='file:///srv/wheels /opt/w http://w/links'\n",
			want: sources{urls: []string{"http://w/links"}, paths: []string{"/opt/w", "/srv/wheels"}},
		},
		{name: "relative find-links", out: "global.find-links='wheels'\n", bad: true},
		{name: "unreadable", out: "global.index-url=http://x\n", bad: true},
	} {
		got, err := parseConfigList([]byte(tt.out))
		if tt.bad {
			if err == nil {
				t.Errorf("%s: no error, got %+v", tt.name, got)
			}
			continue
		}
		if err != nil || !slices.Equal(got.urls, tt.want.urls) || !slices.Equal(got.paths, tt.want.paths) {
			t.Errorf("%s: %+v %v, want %+v", tt.name, got, err, tt.want)
		}
	}
}

func TestPyString(t *testing.T) {
	for in, want := range map[string]string{
		`'a'`:             "a",
		`'\nb\tc'`:        "\nb\tc",
		`'say "hi"'`:      `say "hi"`,
		`"it's"`:          "it's",
		`'x\'y"z'`:        `x'y"z`,
		`'back\\sl'`:      `back\sl`,
		`'caf\xe9'`:       "caf\xe9",
		`'\u00e9t\u00e9'`: "été",
	} {
		if got, err := pyString(in); err != nil || got != want {
			t.Errorf("pyString(%s) = %q, %v; want %q", in, got, err, want)
		}
	}
}
