package secrets

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/skillbox-dev/skillbox/errdefs"
)

func TestParseEnvFile(t *testing.T) {
	in := `# comment

A=plain value  # trailing comment
export B=b
C="line\nnext \"q\" \\ \$HOME" # c
D='single $HOME \n'
E=
F = spaced
URL=https://x.example/#frag
`
	got, err := ParseEnvFile([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := Map{"A": "plain value", "B": "b", "C": "line\nnext \"q\" \\ $HOME", "D": `single $HOME \n`, "E": "", "F": "spaced", "URL": "https://x.example/#frag"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestParseEnvFileErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"no equals", "A=1\nJUSTANAME\n", "2: want NAME=VALUE"},
		{"bad name", "1A=x\n", `1: "1A" is not a valid variable name`},
		{"duplicate", "A=1\nA=2\n", "2: A is already set at line 1"},
		{"unterminated double", `A="abc`, "unterminated double quote"},
		{"unterminated single", `A='abc`, "unterminated single quote"},
		{"text after quote", `A="x" y`, "after the closing quote"},
		{"bad escape", `A="\q"`, "unknown escape"},
		{"stray quote", `A=it's`, "quote the whole value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseEnvFile([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v; want %q", err, tt.want)
			}
		})
	}
	// Errors never contain the value.
	_, err := ParseEnvFile([]byte(`TOKEN="supersecret`))
	if err == nil || strings.Contains(err.Error(), "supersecret") {
		t.Errorf("error leaks the value: %v", err)
	}
	p := filepath.Join(t.TempDir(), ".env")
	os.WriteFile(p, []byte("A=1\nB\n"), 0o600)
	if _, err := EnvFile(p); errdefs.KindOf(err) != errdefs.Invalid || !strings.Contains(err.Error(), p+":2") {
		t.Errorf("EnvFile error should be invalid with file:line: %v", err)
	}
}

func TestDirAndChain(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "TOKEN"), []byte("t0k\n"), 0o600)
	os.Mkdir(filepath.Join(dir, "ADIR"), 0o700)
	outside := filepath.Join(t.TempDir(), "x")
	os.WriteFile(outside, []byte("outside"), 0o600)
	os.Symlink(outside, filepath.Join(dir, "ESCAPE"))
	os.Symlink("TOKEN", filepath.Join(dir, "ALIAS"))
	d := Dir(dir)
	if v, ok, err := d.Lookup("TOKEN"); v != "t0k" || !ok || err != nil {
		t.Errorf("TOKEN = %q %v %v", v, ok, err)
	}
	if v, ok, err := d.Lookup("ALIAS"); v != "t0k" || !ok || err != nil {
		t.Errorf("link inside = %q %v %v", v, ok, err)
	}
	if _, ok, err := d.Lookup("MISSING"); ok || err != nil {
		t.Errorf("missing: %v %v", ok, err)
	}
	for _, name := range []string{"ESCAPE", "ADIR"} {
		if _, _, err := d.Lookup(name); errdefs.KindOf(err) != errdefs.Invalid {
			t.Errorf("%s: err = %v, want invalid", name, err)
		}
	}
	if _, ok, _ := d.Lookup("../x"); ok {
		t.Error("path traversal in a name")
	}
	host := Env(func(k string) (string, bool) {
		return map[string]string{"TOKEN": "host", "OTHER": "o"}[k], k == "TOKEN" || k == "OTHER"
	})
	c := Chain{Map{"A": "file"}, d, host}
	for name, want := range map[string]string{"A": "file", "TOKEN": "t0k", "OTHER": "o"} {
		if v, ok, err := c.Lookup(name); v != want || !ok || err != nil {
			t.Errorf("chain %s = %q %v %v; want %q", name, v, ok, err, want)
		}
	}
	if _, _, err := c.Lookup("ESCAPE"); err == nil {
		t.Error("a broken provider must stop the chain")
	}
}

func FuzzParseEnvFile(f *testing.F) {
	f.Add([]byte("A=1\nB=\"x\\ny\"\nC='z'\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseEnvFile(data)
		if err != nil {
			return
		}
		for k := range m {
			if !ValidName(k) {
				t.Fatalf("accepted name %q", k)
			}
		}
	})
}
