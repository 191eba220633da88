package schema

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestSkillwareFixtures compiles the parameters of every fixture and example
// skill, validates the params recorded in expected.json against them, and
// exports each skill in every format.
func TestSkillwareFixtures(t *testing.T) {
	var manifests []string
	for _, glob := range []string{"../../testdata/skillware/*/*/manifest.yaml", "../../examples/skills/*/*/manifest.yaml"} {
		m, err := filepath.Glob(glob)
		if err != nil {
			t.Fatal(err)
		}
		manifests = append(manifests, m...)
	}
	if len(manifests) < 7 {
		t.Fatalf("found %d manifests, want at least 7", len(manifests))
	}
	for _, path := range manifests {
		dir := filepath.Dir(path)
		id := filepath.Base(filepath.Dir(dir)) + "/" + filepath.Base(dir)
		t.Run(id, func(t *testing.T) {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var m struct {
				Name        string         `yaml:"name"`
				Description string         `yaml:"description"`
				Parameters  map[string]any `yaml:"parameters"`
				Outputs     any            `yaml:"outputs"`
			}
			if err := yaml.Unmarshal(raw, &m); err != nil {
				t.Fatal(err)
			}
			v, err := Compile(m.Parameters)
			if err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(filepath.Join(dir, "expected.json")); err == nil {
				var cases []struct{ Params json.RawMessage }
				if err := json.Unmarshal(b, &cases); err != nil {
					t.Fatal(err)
				}
				for _, c := range cases {
					if err := v.Validate(c.Params); err != nil {
						t.Errorf("expected.json params %s: %v", c.Params, err)
					}
				}
			}
			for _, f := range Formats() {
				out, err := Export(Tool{ID: id, Name: m.Name, Description: m.Description, Parameters: m.Parameters, Outputs: m.Outputs}, f)
				if err != nil {
					t.Errorf("%s: %v", f, err)
					continue
				}
				checkFormat(t, f, out, m.Description)
			}
		})
	}
}
