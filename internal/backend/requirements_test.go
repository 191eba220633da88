package backend

import (
	"errors"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/pyinterp"
)

func ptr(s string) *string { return &s }

func TestCheckRequirements(t *testing.T) {
	pkgs := map[string]*string{"pyyaml": ptr("6.0"), "requests": nil, "localmod": ptr("")}
	tests := []struct {
		name string
		reqs []string
		want []string // substrings of the error; nil means no error
	}{
		{"met", []string{"pyyaml>=5", "PyYAML"}, nil},
		{"importable without version", []string{"localmod"}, nil},
		{"missing", []string{"requests>=2"}, []string{"requests>=2 (not installed)"}},
		{"absent from report", []string{"numpy"}, []string{"numpy (not installed)"}},
		{"too old", []string{"pyyaml>=7"}, []string{"pyyaml>=7 (6.0 is installed)"}},
		{"unknown version with specifier", []string{"localmod>=1"}, []string{"version is unknown"}},
		{"lists all", []string{"requests", "pyyaml<6"}, []string{"requests (not installed)", "pyyaml<6 (6.0 is installed)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckRequirements(tt.reqs, pkgs, "/usr/bin/python3", "")
			if tt.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if !errors.Is(err, errdefs.ErrUnavailable) {
				t.Fatalf("err = %v, want kind unavailable", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// The hint ends the message; without one nothing is added.
func TestCheckRequirementsHint(t *testing.T) {
	reqs, pkgs := []string{"requests"}, map[string]*string{}
	err := CheckRequirements(reqs, pkgs, "/usr/bin/python3", HostPythonHint("net/fetch"))
	want := "/usr/bin/python3 lacks requirements of the skill: requests (not installed) (SKILLBOX_PYTHON names another interpreter; the linux backend runs the skill on an environment of its own, built with pip: 'skillbox env build net/fetch --backend linux')"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
	if err := CheckRequirements(reqs, pkgs, "/usr/bin/python3", ""); err == nil || !strings.HasSuffix(err.Error(), "requests (not installed)") {
		t.Errorf("without a hint: %v", err)
	}
	if PythonEnvVar != pyinterp.EnvVar {
		t.Errorf("PythonEnvVar %s, pyinterp's %s", PythonEnvVar, pyinterp.EnvVar)
	}
}

func TestRequirementNames(t *testing.T) {
	names, err := RequirementNames([]string{"PyYAML>=6", "Foo_Bar.baz"})
	if err != nil || strings.Join(names, ",") != "pyyaml,foo-bar-baz" {
		t.Fatalf("got %v, %v", names, err)
	}
	if _, err := RequirementNames([]string{">=1"}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("junk requirement: err = %v, want invalid", err)
	}
}
