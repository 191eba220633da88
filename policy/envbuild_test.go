package policy

import (
	"strings"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
)

// env_build: each limit read, an unset one zero (the default); anything
// else invalid naming FILE:LINE and the field.
func TestParseEnvBuild(t *testing.T) {
	p, err := Parse("p.yaml", []byte("version: 1\nenv_build:\n  memory: 1GiB\n  pids: 64\n  size: 256MiB\n  scratch: 128MiB\n  timeout: 90s\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := EnvBuildLimits{Memory: 1 << 30, Pids: 64, Size: 256 << 20, Scratch: 128 << 20, Timeout: 90 * time.Second, Line: 2}
	if p.EnvBuild != want {
		t.Errorf("env_build = %+v, want %+v", p.EnvBuild, want)
	}
	p, err = Parse("p.yaml", []byte("env_build: {size: 1MiB}\n"))
	if err != nil || p.EnvBuild != (EnvBuildLimits{Size: 1 << 20, Line: 1}) {
		t.Errorf("one limit: %+v %v", p.EnvBuild, err)
	}
	for bad, want := range map[string]string{
		"env_build:\n  memory: lots\n": "p.yaml:2: env_build.memory",
		"env_build:\n  size: 0\n":      "p.yaml:2: env_build.size",
		"env_build:\n  pids: -1\n":     "p.yaml:2: env_build.pids",
		"env_build:\n  pids: many\n":   "p.yaml:2: env_build.pids",
		"env_build:\n  timeout: 0s\n":  "p.yaml:2: env_build.timeout",
		"env_build:\n  sizes: 1GiB\n":  "p.yaml:2: env_build: unknown field \"sizes\"",
		"env_build: [memory]\n":        "p.yaml:1: env_build",
		"env_build:\n  scratch: [1]\n": "p.yaml:2: env_build.scratch",
	} {
		if _, err := Parse("p.yaml", []byte(bad)); errdefs.KindOf(err) != errdefs.Invalid || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q): %v, want invalid with %q", bad, err, want)
		}
	}
}
