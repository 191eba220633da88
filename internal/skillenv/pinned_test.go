package skillenv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/errdefs"
)

func TestParsePinned(t *testing.T) {
	h := strings.Repeat("ab", 32)
	got, err := ParsePinned([]string{"beta==2.1 sha256=" + h, "alpha==1.0 sha256=" + h})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Requirement() != "alpha==1.0 --hash=sha256:"+h || got[1].Name != "beta" {
		t.Errorf("ParsePinned = %+v", got)
	}
	for name, set := range map[string][]string{
		"no hash":        {"alpha==1.0"},
		"short hash":     {"alpha==1.0 sha256=abc"},
		"other hash":     {"alpha==1.0 md5=" + h},
		"not pinned":     {"alpha>=1.0 sha256=" + h},
		"not normalised": {"Alpha==1.0 sha256=" + h},
		"an option":      {"alpha==1.0 sha256=" + h + " --index-url=http://evil"},
		"bad version":    {"alpha==1.0;os_name sha256=" + h},
		"twice":          {"alpha==1.0 sha256=" + h, "alpha==1.1 sha256=" + h},
	} {
		if _, err := ParsePinned(set); errdefs.KindOf(err) != errdefs.Invalid {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
	if _, err := ParsePinned([]string{"alpha==1.0"}); err == nil || !strings.Contains(err.Error(), "alpha==1.0 has no hash") {
		t.Errorf("no hash: %v, want a message naming it", err)
	}
	// The key covers the pinned set and its hashes; no set, the key of
	// the unpinned request.
	base := Request{Python: "/usr/bin/python3", PythonVersion: "3.11.2", Requirements: []string{"alpha"}}
	k0, _ := base.Key()
	p1 := base
	p1.Pinned = []string{"alpha==1.0 sha256=" + h}
	p2 := base
	p2.Pinned = []string{"alpha==1.0 sha256=" + strings.Repeat("cd", 32)}
	k1, err1 := p1.Key()
	k2, err2 := p2.Key()
	if err1 != nil || err2 != nil || k1 == k0 || k2 == k1 {
		t.Errorf("keys %s %s %s (%v %v): want three different", k0, k1, k2, err1, err2)
	}
	p1.Pinned = []string{"alpha==1.0"}
	if _, err := p1.Key(); errdefs.KindOf(err) != errdefs.Invalid {
		t.Errorf("key of a set without hashes: %v", err)
	}
}

// A pinned request installs exactly the recorded set, checked against its
// hashes, even when the index now serves a newer version that resolving
// the requirements again picks; a hash that does not match is pip's
// refusal, and leaves nothing behind.
func TestEnsurePinned(t *testing.T) {
	pip := needPip(t)
	wheels := t.TempDir()
	wheel(t, wheels, "alpha", "1.0", "VERSION = '1.0'\nimport beta\n", "beta>=2")
	wheel(t, wheels, "beta", "2.1", "VERSION = '2.1'\n")
	url, _ := index(t, wheels)
	idx, err := IndexFromEnv(func(k string) string {
		return map[string]string{"PIP_INDEX_URL": url, "PIP_CONFIG_FILE": os.DevNull}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	newCache := func() *Cache {
		return &Cache{Dir: filepath.Join(t.TempDir(), "envs"), Builder: &hostBuilder{}, PipWheel: pip}
	}
	c := newCache()
	req := Request{Python: "/usr/bin/python3", PythonVersion: "3", Requirements: []string{"alpha"}, Index: idx}
	e, err := c.Ensure(context.Background(), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	set := recorded(e.Resolved)

	wheel(t, wheels, "beta", "2.2", "VERSION = '2.2'\n") // published since
	pinned := req
	pinned.Pinned = set
	var lines []string
	pe, err := c.Ensure(context.Background(), pinned, func(l string) { lines = append(lines, l) })
	if err != nil {
		t.Fatalf("%v\n%s", err, strings.Join(lines, "\n"))
	}
	if pe.Key == e.Key || !slices.Equal(recorded(pe.Resolved), set) || !slices.Equal(pe.Pinned, set) {
		t.Errorf("pinned env %s resolved %v, want another key than %s and the set %v", pe.Key, recorded(pe.Resolved), e.Key, set)
	}
	if out, err := exec.Command(pe.Python, "-c", "import beta; print(beta.VERSION)").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "2.1" {
		t.Errorf("the pinned environment has beta %s (%v), want 2.1", out, err)
	}
	again, err := newCache().Ensure(context.Background(), req, nil)
	if err != nil || !slices.Contains(recorded(again.Resolved), "beta==2.2 "+hashOf(t, filepath.Join(wheels, "beta-2.2-py3-none-any.whl"))) {
		t.Errorf("resolving again: %v %v, want beta 2.2", again, err)
	}

	tampered := req
	tampered.Pinned = slices.Clone(set)
	for i, x := range tampered.Pinned {
		if strings.HasPrefix(x, "beta==") {
			tampered.Pinned[i] = "beta==2.1 sha256=" + strings.Repeat("0", 64)
		}
	}
	lines = nil
	_, err = c.Ensure(context.Background(), tampered, func(l string) { lines = append(lines, l) })
	if errdefs.KindOf(err) != errdefs.Unavailable || !strings.Contains(strings.Join(lines, "\n"), "DO NOT MATCH THE HASHES") {
		t.Errorf("tampered hash: %v\n%s", err, strings.Join(lines, "\n"))
	}
	if got, _ := c.Lookup(tampered); got != nil {
		t.Errorf("a refused build left %s", got.Dir)
	}
}

// recorded is a resolved set as lockfiles record it.
func recorded(pkgs []Package) []string {
	var out []string
	for _, p := range pkgs {
		out = append(out, p.String()+" "+p.Hash)
	}
	slices.Sort(out)
	return out
}

// hashOf is a file's hash as pip reports it: "sha256=HEX".
func hashOf(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return "sha256=" + hex.EncodeToString(sum[:])
}
