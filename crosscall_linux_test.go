package skillbox_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/skillbox-dev/skillbox"
	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/sandbox/sandboxtest"
	"github.com/skillbox-dev/skillbox/skill"
)

// TestCrossCallAttacks runs every state/* attack of the corpus through one
// long-lived Runtime, as a server does: call 1 plants (with a secret), call
// 2 of the same skill with other params must get none of it, on each
// isolating backend this host has. The corpus is an external root, run
// with --trust-remote-code as an operator would run untrusted skills.
// Afterwards another skill's call through the same Runtime must still work.
func TestCrossCallAttacks(t *testing.T) {
	corpus, err := filepath.Abs("testdata/attacks")
	if err != nil {
		t.Fatal(err)
	}
	for _, backend := range []string{"linux", "pyodide"} {
		t.Run(backend, func(t *testing.T) {
			requireBackend(t, backend)
			rt := crossCallRuntime(t, corpus)
			call := func(t *testing.T, id string, params map[string]any) (json.RawMessage, error) {
				return runtimeCall(rt, backend, id, params)
			}
			sandboxtest.RunCrossCall(t, call, sandboxtest.StateAttacks(), backend == "pyodide")
			v, err := runtimeCall(rt, backend, "check/echo", map[string]any{"after": "attacks"})
			if err != nil || string(v) != `{"after":"attacks"}` {
				t.Errorf("a call of another skill through the same Runtime after the attacks: %v / %s", err, v)
			}
		})
	}
}

// requireBackend skips unless backend is registered and available here.
func requireBackend(t *testing.T, backend string) {
	t.Helper()
	d, err := sandbox.Lookup(backend)
	if err != nil {
		t.Skipf("backend %s: %v", backend, err)
	}
	if c := d.Probe(context.Background()); !c.Available {
		t.Skipf("backend %s unavailable on this host: %s", backend, c.Reason)
	}
}

// crossCallRuntime is a Runtime over the attack corpus (external, so
// untrusted) and a benign check/echo skill (project).
func crossCallRuntime(t *testing.T, corpus string) *skillbox.Runtime {
	t.Helper()
	benign := t.TempDir()
	dir := filepath.Join(benign, "check", "echo")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "manifest.yaml"), []byte("name: echo\nversion: \"1\"\ndescription: returns its params\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "skill.py"), []byte(`from skillware.core.base_skill import BaseSkill
class Echo(BaseSkill):
    def execute(self, params):
        return params
`), 0o644)
	rt, err := skillbox.New(skillbox.WithRoots(
		skill.Root{Path: corpus, Tier: skill.TierExternal},
		skill.Root{Path: benign, Tier: skill.TierProject},
	), skillbox.WithCacheDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

func runtimeCall(rt *skillbox.Runtime, backend, id string, params map[string]any) (json.RawMessage, error) {
	b, err := json.Marshal(params)
	if err != nil {
		return nil, err
	}
	res, err := rt.Call(context.Background(), id, b, skillbox.CallOptions{Backend: backend, TrustRemoteCode: true})
	if err != nil {
		return nil, err
	}
	return res.Value, nil
}
