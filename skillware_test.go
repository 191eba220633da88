package skillbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/skillbox-dev/skillbox"
	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/pyinterp"
	"github.com/skillbox-dev/skillbox/internal/skillenv/envtest"
	"github.com/skillbox-dev/skillbox/sandbox"
	_ "github.com/skillbox-dev/skillbox/sandbox/all"
	"github.com/skillbox-dev/skillbox/skill"
)

// backendsUnderTest are the registered backends this host can run. The
// process backend is always among them when Python is installed.
func backendsUnderTest(t *testing.T) []string {
	t.Helper()
	var names []string
	for _, r := range sandbox.List() {
		d, err := sandbox.Lookup(r.Name)
		if err != nil {
			t.Logf("backend %s: %v", r.Name, err)
			continue
		}
		if c := d.Probe(context.Background()); !c.Available {
			t.Logf("backend %s unavailable here: %s", r.Name, c.Reason)
			continue
		}
		names = append(names, r.Name)
	}
	if len(names) == 0 {
		t.Skip("no backend can run on this host (is python3 installed? run scripts/setup)")
	}
	return names
}

// TestSkillwareFixtures runs skills that reproduce real Skillware loading
// patterns (relative imports, importlib of siblings, sys.path insertion,
// data folders, yaml, skillware.core.* imports, aexecute-only skills,
// credentials granted or not) on every available backend and compares each
// result with what Skillware's own in-process loader returned
// (testdata/skillware/README.md says how expected.json was made). A case's
// env is what the host had: those variables are granted for the call.
func TestSkillwareFixtures(t *testing.T) {
	root, err := filepath.Abs("testdata/skillware")
	if err != nil {
		t.Fatal(err)
	}
	var caseEnv map[string]string // the running case's variables
	// Skills that declare requirements get their environment on the
	// linux backend: from a loopback index holding PyYAML packed from
	// the host's (offline, and the same code Skillware's run used).
	wheels := t.TempDir()
	if in, err := pyinterp.Resolve(context.Background(), ""); err == nil {
		envtest.InstalledWheel(t, wheels, in.Executable, "yaml", "PyYAML")
	}
	url, _ := envtest.Index(t, wheels)
	pip := map[string]string{"PIP_INDEX_URL": url, "PIP_CONFIG_FILE": os.DevNull}
	rt, err := skillbox.New(skillbox.WithRoots(skill.Root{Path: root, Tier: skill.TierProject}), skillbox.WithCacheDir(t.TempDir()),
		skillbox.WithLookupEnv(func(name string) (string, bool) {
			if v, ok := pip[name]; ok {
				return v, ok
			}
			v, ok := caseEnv[name]
			return v, ok
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	files, err := filepath.Glob(filepath.Join(root, "*", "*", "expected.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures under %s: %v", root, err)
	}
	for _, file := range files {
		id := filepath.ToSlash(strings.TrimPrefix(filepath.Dir(file), root+string(filepath.Separator)))
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var cases []struct {
			Env    map[string]string `json:"env"`
			Params json.RawMessage   `json:"params"`
			Result any               `json:"result"`
		}
		if err := json.Unmarshal(data, &cases); err != nil {
			t.Fatalf("%s/expected.json: %v", id, err)
		}
		for _, backend := range backendsUnderTest(t) {
			t.Run(id+"/"+backend, func(t *testing.T) {
				for i, c := range cases {
					caseEnv = c.Env
					opts := skillbox.CallOptions{Backend: backend}
					for name := range c.Env {
						opts.AllowEnv = append(opts.AllowEnv, name)
					}
					res, err := rt.Call(context.Background(), id, c.Params, opts)
					if errors.Is(err, errdefs.ErrUnavailable) && strings.Contains(err.Error(), "lacks requirements") {
						// e.g. PyYAML on Pyodide, which cannot install packages offline.
						t.Skipf("backend %s cannot run this skill here: %v", backend, err)
					}
					if err != nil {
						t.Fatalf("case %d: %v", i, err)
					}
					var got any
					if err := json.Unmarshal(res.Value, &got); err != nil {
						t.Fatal(err)
					}
					if diff := cmp.Diff(c.Result, got); diff != "" {
						t.Errorf("case %d (params %s, env %v): result differs from Skillware's in-process loader (-want +got):\n%s", i, c.Params, c.Env, diff)
					}
				}
			})
		}
	}
}
