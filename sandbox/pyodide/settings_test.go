//go:build unix

package pyodide

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/sandbox"
)

func TestSettings(t *testing.T) {
	cfg := func(s ...sandbox.Setting) sandbox.Config {
		for i := range s {
			s[i].Line = 3 + i
		}
		return sandbox.Config{Backend: Name, File: "p.yaml", Line: 2, Settings: s}
	}
	n := func(k, v string) sandbox.Setting { return sandbox.Setting{Key: k, Value: v, Kind: "int"} }
	good := []struct {
		name string
		cfg  sandbox.Config
		want map[string]any
	}{
		{"defaults", sandbox.Config{Backend: Name}, map[string]any{"idle": 1, "max_workers": 4, "recycle": 500, "install": true}},
		{"set", cfg(n("idle", "2"), n("max_workers", "6"), n("recycle", "20"), sandbox.Setting{Key: "install", Value: "false", Kind: "bool"}),
			map[string]any{"idle": 2, "max_workers": 6, "recycle": 20, "install": false}},
	}
	for _, tt := range good {
		o, err := optionsFrom(tt.cfg)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if diff := cmp.Diff(tt.want, New(o).Config()); diff != "" {
			t.Errorf("%s: config (-want +got):\n%s", tt.name, diff)
		}
	}
	bad := []struct {
		name string
		cfg  sandbox.Config
		want string
	}{
		{"unknown", cfg(n("cache_dir", "1")), `policy p.yaml:3: backends.pyodide: unknown setting "cache_dir" (known: idle, install, max_workers, recycle)`},
		{"zero recycle", cfg(n("recycle", "0")), "backends.pyodide.recycle: 0 is out of range"},
		{"idle above default max", cfg(n("idle", "5")), "policy p.yaml:3: backends.pyodide.idle: 5 is more than max_workers (4)"},
		{"zero workers", cfg(n("max_workers", "0")), "backends.pyodide.max_workers: 0 is out of range"},
		{"install not bool", cfg(sandbox.Setting{Key: "install", Value: "no", Kind: "str"}), `backends.pyodide.install: must be true or false, got "no"`},
	}
	for _, tt := range bad {
		if _, err := optionsFrom(tt.cfg); !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v; want invalid containing %q", tt.name, err, tt.want)
		}
	}
}
