//go:build linux

package linux

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/sandbox"
)

// skillSrc wraps body as the execute method of a Skillware skill.
func skillSrc(body string) string {
	return `import os, sys, json
from skillware.core.base_skill import BaseSkill

class TestSkill(BaseSkill):
    def execute(self, params):
` + body + "\n"
}

// bundle writes a skill whose execute has body, world-readable (the jail
// runs as nobody).
func bundle(t testing.TB, body string) string {
	t.Helper()
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, "skill.py"), []byte(skillSrc(body)), 0o644); err != nil {
		t.Fatal(err)
	}
	man := "name: test\nversion: 0.0.1\ndescription: test\n"
	if err := os.WriteFile(filepath.Join(dir, "manifest.yaml"), []byte(man), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the jail's cgroups and uid switch are tested as root (CI runs as root)")
	}
}

func openBox(t testing.TB, opts Options, spec sandbox.Spec) sandbox.Sandbox {
	t.Helper()
	requireRoot(t)
	d := New(opts)
	if spec.SkillID == "" {
		spec.SkillID = "test/skill"
	}
	sb, err := d.Open(context.Background(), spec)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { sb.Close() })
	return sb
}

func call(t testing.TB, sb sandbox.Sandbox, params any) (*sandbox.Result, error) {
	t.Helper()
	p, _ := json.Marshal(params)
	return sb.Call(context.Background(), sandbox.Request{Params: p})
}

// value decodes a result into a map.
func value(t testing.TB, res *sandbox.Result) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(res.Value, &m); err != nil {
		t.Fatalf("result %s: %v", res.Value, err)
	}
	return m
}

// hangingImport writes a skill whose import hangs (for two minutes) once
// hang has been called: it checks for a file in flagDir, which the
// sandbox must be granted to read.
func hangingImport(t *testing.T) (dir, flagDir string, hang func()) {
	t.Helper()
	flagDir = t.TempDir()
	os.Chmod(flagDir, 0o755)
	flag := filepath.Join(flagDir, "hang")
	dir = bundle(t, `        return {}`)
	src := "import os, time\nif os.path.exists(" + strconv.Quote(flag) + "):\n    time.sleep(120)\n"
	if err := os.WriteFile(filepath.Join(dir, "skill.py"), []byte(src+skillSrc(`        return {}`)), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, flagDir, func() {
		if err := os.WriteFile(flag, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// closesSoon fails the test if sb's Close takes 20 s or more: it would be
// waiting out what, a start whose own bound is longer.
func closesSoon(t *testing.T, sb sandbox.Sandbox, what string) {
	t.Helper()
	start := time.Now()
	done := make(chan struct{})
	go func() { sb.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("Close still waits after %v: it waits out %s", time.Since(start), what)
	}
}
