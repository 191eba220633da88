package skillbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox"
	"github.com/skillbox-dev/skillbox/audit"
	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/skill"
)

// counterSkill keeps a module-level counter: single-use calls must always
// see 1, session calls 1, 2, 3...
const counterSkill = `from skillware.core.base_skill import BaseSkill
COUNT = 0
class Counter(BaseSkill):
    @property
    def manifest(self):
        return {}
    def execute(self, params):
        global COUNT
        COUNT += 1
        return {"count": COUNT}
`

func newTestRuntime(t testing.TB, opts ...skillbox.Option) *skillbox.Runtime {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "test", "counter")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "manifest.yaml"), []byte("name: counter\nversion: \"1\"\ndescription: counts\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "skill.py"), []byte(counterSkill), 0o644)
	opts = append([]skillbox.Option{skillbox.WithRoots(skill.Root{Path: root, Tier: skill.TierProject}), skillbox.WithCacheDir(t.TempDir())}, opts...)
	rt, err := skillbox.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

func count(t *testing.T, res *skillbox.Result, err error) int {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	var v struct{ Count int }
	json.Unmarshal(res.Value, &v)
	return v.Count
}

func TestSingleUseAndSession(t *testing.T) {
	for _, backend := range backendsUnderTest(t) {
		t.Run(backend, func(t *testing.T) {
			rt := newTestRuntime(t)
			ctx := context.Background()
			for i := 0; i < 3; i++ {
				res, err := rt.Call(ctx, "test/counter", nil, skillbox.CallOptions{Backend: backend})
				if n := count(t, res, err); n != 1 {
					t.Fatalf("single-use call %d saw count %d: state survived a call", i, n)
				}
			}
			s, err := rt.OpenSession(ctx, "test/counter", skillbox.CallOptions{Backend: backend})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for i := 1; i <= 3; i++ {
				res, err := s.Call(ctx, nil)
				if n := count(t, res, err); n != i {
					t.Fatalf("session call %d saw count %d", i, n)
				}
			}
		})
	}
}

func TestCallRejectsSessionMode(t *testing.T) {
	rt := newTestRuntime(t)
	_, err := rt.Call(context.Background(), "test/counter", nil, skillbox.CallOptions{Mode: sandbox.ModeSession, Backend: "process"})
	if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "OpenSession") {
		t.Fatalf("err = %v", err)
	}
}

func TestAuditThroughGoAPI(t *testing.T) {
	var buf bytes.Buffer
	rt := newTestRuntime(t, skillbox.WithAudit(audit.New(&buf)))
	backendsUnderTest(t)
	if _, err := rt.Call(context.Background(), "test/counter", json.RawMessage(`{"q":"secret"}`), skillbox.CallOptions{Backend: "process"}); err != nil {
		t.Fatal(err)
	}
	rt.Call(context.Background(), "test/missing", nil, skillbox.CallOptions{Backend: "process"})
	// Large params are hashed beside their validation.
	big := json.RawMessage(`{"q":"` + strings.Repeat("x", 200<<10) + `"}`)
	if _, err := rt.Call(context.Background(), "test/counter", big, skillbox.CallOptions{Backend: "process"}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 || strings.Contains(buf.String(), "secret") {
		t.Fatalf("audit log:\n%s", buf.String())
	}
	recs := make([]audit.Record, len(lines))
	for i, l := range lines {
		json.Unmarshal([]byte(l), &recs[i])
	}
	if r := recs[1]; r.Outcome != "error" || r.ErrorKind != "not_found" {
		t.Errorf("bad record for a missing skill: %+v", r)
	}
	for i, params := range []string{`{"q":"secret"}`, `{}`, string(big)} {
		if got, want := recs[i].ParamsSHA256, audit.HashParams([]byte(params)); got != want {
			t.Errorf("record %d: params_sha256 %q, want %q", i, got, want)
		}
	}
}

// TestSealedCopyRemembered: a Runtime remembers the sealed copy it
// checked for a skill, so that later calls of the unchanged skill do not
// read it again; a copy removed meanwhile (a cleaned cache) is made again
// by the next call, and an edit's old copy is forgotten once the watcher
// has seen the edit.
func TestSealedCopyRemembered(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("no change notification: every call resolves anew")
	}
	root, cache := t.TempDir(), t.TempDir()
	dir := filepath.Join(root, "test", "sealed")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "manifest.yaml"), []byte("name: sealed\nversion: \"1\"\ndescription: d\n"), 0o644)
	code := "from skillware.core.base_skill import BaseSkill\nclass S(BaseSkill):\n    def execute(self, params):\n        return {'v': %d}\n"
	os.WriteFile(filepath.Join(dir, "skill.py"), fmt.Appendf(nil, code, 1), 0o644)
	rt, err := skillbox.New(skillbox.WithRoots(skill.Root{Path: root, Tier: skill.TierProject}), skillbox.WithCacheDir(cache))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	call := func(want int) string {
		t.Helper()
		res, err := rt.Call(context.Background(), "test/sealed", nil, skillbox.CallOptions{Backend: "process"})
		if err != nil {
			t.Fatal(err)
		}
		var v struct{ V int }
		json.Unmarshal(res.Value, &v)
		if v.V != want {
			t.Fatalf("ran v%d, want v%d", v.V, want)
		}
		return res.Skill.Digest
	}
	digest := call(1)
	call(1)
	if got := skillbox.SealedDigests(rt); len(got) != 1 || got[0] != digest {
		t.Fatalf("remembered sealed copies %v, want one of %s", got, digest)
	}
	copyDir := filepath.Join(cache, "bundles", strings.TrimPrefix(digest, "sha256:"))
	if err := os.RemoveAll(copyDir); err != nil {
		t.Fatal(err)
	}
	call(1)
	if _, err := os.Stat(filepath.Join(copyDir, "skill.py")); err != nil {
		t.Fatalf("the removed copy was not made again: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "skill.py"), fmt.Appendf(nil, code, 2), 0o644)
	digest2 := call(2)
	if digest2 == digest {
		t.Fatal("the edit did not change the digest")
	}
	eventually(t, "forgetting the old copy", func() bool {
		got := skillbox.SealedDigests(rt)
		return len(got) == 1 && got[0] == digest2
	})
}

// TestCallRunsSealedCopy: the backend runs the sealed copy of the bundle
// (skill.Seal) in the cache folder, named by the digest the call was
// checked against, and a change to the skill's folder makes a new copy
// for the next call instead of altering the one a sandbox already runs.
func TestCallRunsSealedCopy(t *testing.T) {
	root, cache := t.TempDir(), t.TempDir()
	dir := filepath.Join(root, "test", "where")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "manifest.yaml"), []byte("name: where\nversion: \"1\"\ndescription: says where it runs\n"), 0o644)
	code := `from skillware.core.base_skill import BaseSkill
class Where(BaseSkill):
    def execute(self, params):
        return {"file": __file__, "v": %d}
`
	os.WriteFile(filepath.Join(dir, "skill.py"), fmt.Appendf(nil, code, 1), 0o644)
	rt, err := skillbox.New(skillbox.WithRoots(skill.Root{Path: root, Tier: skill.TierProject}), skillbox.WithCacheDir(cache))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	where := func() (string, int, string) {
		t.Helper()
		res, err := rt.Call(context.Background(), "test/where", nil, skillbox.CallOptions{Backend: "process"})
		if err != nil {
			t.Fatal(err)
		}
		var v struct {
			File string
			V    int
		}
		json.Unmarshal(res.Value, &v)
		return v.File, v.V, res.Skill.Digest
	}
	file, v, digest := where()
	want := filepath.Join(cache, "bundles", strings.TrimPrefix(digest, "sha256:"), "skill.py")
	if file != want || v != 1 {
		t.Fatalf("ran %s (v%d), want %s (v1)", file, v, want)
	}
	os.WriteFile(filepath.Join(dir, "skill.py"), fmt.Appendf(nil, code, 2), 0o644)
	file2, v2, digest2 := where()
	if digest2 == digest || v2 != 2 || file2 == file {
		t.Errorf("after the change: ran %s v%d digest %s; want a new copy running v2", file2, v2, digest2)
	}
	if b, _ := os.ReadFile(file); !strings.Contains(string(b), `"v": 1`) {
		t.Errorf("the first copy changed: %s", b)
	}
}
