package worker

import (
	"slices"
	"strings"
	"testing"
)

// The harness removes the variable only when it holds the host's value,
// so both sides must agree on it.
func TestMallocTunablesMatchHarness(t *testing.T) {
	if want := `MALLOC_TUNABLES = "` + MallocTunables + `"`; !strings.Contains(harnessSource, want) {
		t.Errorf("harness.py lacks %s", want)
	}
}

func TestWithMallocTunables(t *testing.T) {
	env := Environ("/scratch", map[string]string{"A": "1"})
	got := WithMallocTunables(slices.Clone(env))
	if want := append(slices.Clone(env), "GLIBC_TUNABLES="+MallocTunables); !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	// A granted (or an image's) GLIBC_TUNABLES is kept, not doubled.
	own := Environ("/scratch", map[string]string{"GLIBC_TUNABLES": "glibc.malloc.check=3"})
	if got := WithMallocTunables(slices.Clone(own)); !slices.Equal(got, own) {
		t.Errorf("with a granted GLIBC_TUNABLES: got %q, want %q", got, own)
	}
}
