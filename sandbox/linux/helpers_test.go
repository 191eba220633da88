//go:build linux

package linux

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

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
