package pep440

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skillbox-dev/skillbox/errdefs"
)

func TestParseRequirement(t *testing.T) {
	tests := []struct {
		in   string
		want Requirement
	}{
		{"requests", Requirement{Name: "requests", Normalized: "requests"}},
		{"pyyaml>=6.0", Requirement{Name: "pyyaml", Normalized: "pyyaml", Specifiers: []Specifier{{">=", "6.0"}}}},
		{"numpy>=1.20,<2", Requirement{Name: "numpy", Normalized: "numpy", Specifiers: []Specifier{{">=", "1.20"}, {"<", "2"}}}},
		{"pandas==2.*", Requirement{Name: "pandas", Normalized: "pandas", Specifiers: []Specifier{{"==", "2.*"}}}},
		{"foo~=1.4.2", Requirement{Name: "foo", Normalized: "foo", Specifiers: []Specifier{{"~=", "1.4.2"}}}},
		{"bar!=1.5", Requirement{Name: "bar", Normalized: "bar", Specifiers: []Specifier{{"!=", "1.5"}}}},
		{"baz[extra]>=1; python_version>'3.8'", Requirement{Name: "baz", Normalized: "baz", Extras: []string{"extra"},
			Specifiers: []Specifier{{">=", "1"}}, Marker: "python_version>'3.8'"}},
		{"  Python_Dotenv.Extra--x [a, b_c] ( >= 1.0 , != 1.2.* ) ", Requirement{Name: "Python_Dotenv.Extra--x",
			Normalized: "python-dotenv-extra-x", Extras: []string{"a", "b_c"}, Specifiers: []Specifier{{">=", "1.0"}, {"!=", "1.2.*"}}}},
		{"x===foobar", Requirement{Name: "x", Normalized: "x", Specifiers: []Specifier{{"===", "foobar"}}}},
		{"x[]", Requirement{Name: "x", Normalized: "x"}},
		{"web3;sys_platform=='linux'", Requirement{Name: "web3", Normalized: "web3", Marker: "sys_platform=='linux'"}},
		{"a==1.0+local.7", Requirement{Name: "a", Normalized: "a", Specifiers: []Specifier{{"==", "1.0+local.7"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRequirement(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
			// The canonical spelling parses to the same requirement.
			again, err := ParseRequirement(got.String())
			if err != nil || !cmp.Equal(again, got) {
				t.Errorf("round trip via %q: %+v, %v", got.String(), again, err)
			}
		})
	}
}

func TestParseRequirementErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "must start with a project name"},
		{">=1.0", "must start with a project name"},
		{"-foo", "must start with a project name"},
		{"foo-", `"-" does not start with a version operator`},
		{"foo 1.0", `"1.0" does not start with a version operator`},
		{"foo>=", `missing version after ">="`},
		{"foo>=1.0,", "empty version clause"},
		{"foo>=banana", `">=banana": not a PEP 440 version`},
		{"foo[bar", `unclosed "[" in extras`},
		{"foo[b@r]", `invalid extra name "b@r"`},
		{"foo (>=1", `unclosed "("`},
		{"foo>=1.*", `a ".*" wildcard is only allowed with == and !=`},
		{"foo==1.0a1.*", `may only follow a release number`},
		{"foo~=1", "~= needs at least two release numbers"},
		{"foo>=1.0+local", "local version label is only allowed with == and !="},
		{"foo; ", "empty environment marker"},
		{"foo @ https://example.com/foo.whl", "direct URL references are not supported"},
		{"foo=1.0", `"=1.0" does not start with a version operator`},
		{"foo>=99999999999999999999", "too large"},
		{strings.Repeat("a", 2000), "longer than 1024 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParseRequirement(tt.in)
			if err == nil {
				t.Fatal("parsed")
			}
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Errorf("kind %q", errdefs.KindOf(err))
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestParseVersion(t *testing.T) {
	tests := []struct{ in, want string }{
		{"1.0", "1.0"},
		{"v1.0", "1.0"},
		{" 1.0 ", "1.0"},
		{"1!2.0", "1!2.0"},
		{"1.0a1", "1.0a1"},
		{"1.0-ALPHA.1", "1.0a1"},
		{"1.0beta", "1.0b0"},
		{"1.0c2", "1.0rc2"},
		{"1.0preview3", "1.0rc3"},
		{"1.0-1", "1.0.post1"},
		{"1.0rev", "1.0.post0"},
		{"1.0.r4", "1.0.post4"},
		{"1.0-dev", "1.0.dev0"},
		{"1.0rc1.post2.dev3", "1.0rc1.post2.dev3"},
		{"1.0+Ubuntu-1_B", "1.0+ubuntu.1.b"},
		{"2024.01.05", "2024.1.5"},
	}
	for _, tt := range tests {
		v, err := ParseVersion(tt.in)
		if err != nil {
			t.Errorf("ParseVersion(%q): %v", tt.in, err)
			continue
		}
		if v.String() != tt.want {
			t.Errorf("ParseVersion(%q) = %q, want %q", tt.in, v, tt.want)
		}
	}
	for _, bad := range []string{"", "abc", "1.0.", ".1", "1..0", "1.0+", "1.0+a..b", "1.0 2", "1.0-", "1.0gamma", "1!", "99999999999.0"} {
		if _, err := ParseVersion(bad); err == nil || !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("ParseVersion(%q) = %v, want an invalid error", bad, err)
		}
	}
}

func TestVersionOrder(t *testing.T) {
	// Strictly increasing, from PEP 440's examples and packaging's tests.
	order := []string{
		"1.0.dev456", "1.0a1", "1.0a2.dev456", "1.0a12.dev456", "1.0a12",
		"1.0b1.dev456", "1.0b2", "1.0b2.post345.dev456", "1.0b2.post345",
		"1.0rc1.dev456", "1.0rc1", "1.0", "1.0+abc.5", "1.0+abc.7", "1.0+5", "1.0.post456.dev34",
		"1.0.post456", "1.0.15", "1.1.dev1", "1.1", "2!0.1",
	}
	vs := make([]Version, len(order))
	for i, s := range order {
		v, err := ParseVersion(s)
		if err != nil {
			t.Fatal(err)
		}
		vs[i] = v
	}
	for i := range vs {
		for j := range vs {
			want := cmpInt(i, j)
			if got := vs[i].Compare(vs[j]); got != want {
				t.Errorf("Compare(%s, %s) = %d, want %d", order[i], order[j], got, want)
			}
		}
	}
	a, _ := ParseVersion("1.0")
	b, _ := ParseVersion("1.0.0.0")
	if a.Compare(b) != 0 {
		t.Errorf("1.0 != 1.0.0.0")
	}
}

func TestSatisfiedBy(t *testing.T) {
	tests := []struct {
		req     string
		yes, no []string
	}{
		{"requests", []string{"0.1", "2.31.0", "1.0.post1", "1.0+local"}, []string{"2.0rc1", "2.0.dev1"}},
		{"pyyaml>=6.0", []string{"6.0", "6.0.0", "6.0.1", "7", "6.0+x"}, []string{"5.4.1", "6.0rc1", "6.1a1"}},
		{"numpy>=1.20,<2", []string{"1.20", "1.26.4", "1.99.post1"}, []string{"1.19.5", "2.0", "2.0.0rc1", "2.0.dev0"}},
		{"pandas==2.*", []string{"2", "2.0", "2.2.1", "2.1.post1", "2.0+cpu"}, []string{"1.5.3", "3.0", "20.0", "2.1rc1"}},
		{"foo~=1.4.2", []string{"1.4.2", "1.4.5", "1.4.2.post1"}, []string{"1.4.1", "1.5.0", "1.4.3rc1"}},
		{"foo~=1.4", []string{"1.4", "1.9"}, []string{"2.0", "1.3"}},
		{"bar!=1.5", []string{"1.4", "1.5.1", "1.5.post1"}, []string{"1.5", "1.5.0", "1.5+local"}},
		{"bar!=1.5.*", []string{"1.4", "1.6"}, []string{"1.5", "1.5.9"}},
		{"x==1.0", []string{"1.0", "1.0.0", "1.0+anything"}, []string{"1.0.post1", "1.1"}},
		{"x==1.0+abc", []string{"1.0+abc"}, []string{"1.0", "1.0+abd"}},
		{"x<2.0", []string{"1.9", "1.0.post1"}, []string{"2.0", "2.0rc1", "2.0.dev1"}},
		{"x<2.0rc1", []string{"1.9", "2.0b1", "2.0.dev1"}, []string{"2.0rc1", "2.0"}},
		{"x>1.7", []string{"1.7.1", "1.8"}, []string{"1.7", "1.7.post1", "1.7+local"}},
		{"x>1.7.post2", []string{"1.7.post3", "1.8"}, []string{"1.7.post2", "1.7.post1"}},
		{"x<=1.0", []string{"1.0", "1.0+local", "0.9"}, []string{"1.0.post1", "1.1"}},
		{"x>=2.0b1", []string{"2.0b1", "2.0rc1", "2.0", "3.0a1"}, []string{"2.0a9", "1.9"}},
		{"x===1.0.Foo", []string{"1.0.foo", "1.0.Foo"}, []string{"1.0", "1.0.0"}},
		{"x===1.0rc1", []string{"1.0rc1"}, []string{"1.0"}},
		{"x==1!1.*", []string{"1!1.0"}, []string{"1.0"}},
	}
	for _, tt := range tests {
		r, err := ParseRequirement(tt.req)
		if err != nil {
			t.Fatalf("%s: %v", tt.req, err)
		}
		for _, v := range tt.yes {
			if ok, err := r.SatisfiedBy(v); !ok || err != nil {
				t.Errorf("%s SatisfiedBy(%s) = %v, %v; want true", tt.req, v, ok, err)
			}
		}
		for _, v := range tt.no {
			if ok, err := r.SatisfiedBy(v); ok || err != nil {
				t.Errorf("%s SatisfiedBy(%s) = %v, %v; want false", tt.req, v, ok, err)
			}
		}
	}
}

func TestSatisfiedByErrors(t *testing.T) {
	r, _ := ParseRequirement("x>=1")
	if _, err := r.SatisfiedBy("not-a-version"); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("junk version: %v", err)
	}
	// A hand-built Requirement with a bad specifier is reported, not ignored.
	bad := Requirement{Name: "x", Specifiers: []Specifier{{">=", "1.*"}}}
	if _, err := bad.SatisfiedBy("1.0"); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("bad specifier: %v", err)
	}
}

func FuzzParseRequirement(f *testing.F) {
	for _, s := range []string{"requests", "numpy>=1.20,<2", "pandas==2.*", "foo~=1.4.2",
		"baz[extra]>=1; python_version>'3.8'", "x (>=1.0a1.post2.dev3+l.1)", "x===abc", "x[]"} {
		f.Add(s, "1.0")
	}
	f.Fuzz(func(t *testing.T, req, version string) {
		r, err := ParseRequirement(req)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Fatalf("error kind %q: %v", errdefs.KindOf(err), err)
			}
			return
		}
		if r.Normalized != Normalize(r.Name) {
			t.Fatalf("Normalized %q", r.Normalized)
		}
		// Specifiers that parsed are valid: SatisfiedBy fails only on the version.
		if _, err := r.SatisfiedBy(version); err != nil {
			if _, verr := ParseVersion(version); verr == nil {
				t.Fatalf("SatisfiedBy(%q) on %q: %v", version, req, err)
			}
		}
	})
}

func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{"1.0", "1!2.0rc1.post2.dev3+a.1", "v1.0-ALPHA", "1.0-1", "2024.1"} {
		f.Add(s, "1.0")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		va, err := ParseVersion(a)
		if err != nil {
			return
		}
		// The normal form parses back to an equal version.
		again, err := ParseVersion(va.String())
		if err != nil || again.Compare(va) != 0 || again.String() != va.String() {
			t.Fatalf("%q -> %q -> %v, %v", a, va.String(), again, err)
		}
		vb, err := ParseVersion(b)
		if err != nil {
			return
		}
		if va.Compare(vb) != -vb.Compare(va) {
			t.Fatalf("Compare not antisymmetric for %q, %q", a, b)
		}
	})
}
