package examples_test

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/skillbox-dev/skillbox/examples"
	"github.com/skillbox-dev/skillbox/internal/pep440"
	"github.com/skillbox-dev/skillbox/internal/schema"
)

// Walk the bundled tree and list the skill IDs (folders with a manifest).
func Example() {
	fs.WalkDir(examples.Skills, "skills", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && d.Name() == "manifest.yaml" {
			fmt.Println(strings.TrimPrefix(path.Dir(p), "skills/"))
		}
		return nil
	})
	// Output:
	// data/csv_summary
	// text/readability
	// text/word_stats
	// utility/greeting
}

type manifest struct {
	Name             string         `yaml:"name"`
	Version          string         `yaml:"version"`
	Description      string         `yaml:"description"`
	ShortDescription string         `yaml:"short_description"`
	Category         string         `yaml:"category"`
	Issuer           string         `yaml:"issuer"`
	Parameters       map[string]any `yaml:"parameters"`
	Outputs          map[string]any `yaml:"outputs"`
	Constitution     string         `yaml:"constitution"`
	Presentation     map[string]any `yaml:"presentation"`
	EnvVars          map[string]any `yaml:"env_vars"`
	Requirements     []string       `yaml:"requirements"`
}

func TestBundledSkills(t *testing.T) {
	ids := 0
	err := fs.WalkDir(examples.Skills, "skills", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), "_") || strings.HasPrefix(d.Name(), ".") || strings.HasSuffix(p, ".pyc") {
			t.Errorf("%s: should not be embedded", p)
		}
		if d.IsDir() || d.Name() != "manifest.yaml" {
			return nil
		}
		ids++
		dir := path.Dir(p)
		id := strings.TrimPrefix(dir, "skills/")
		t.Run(id, func(t *testing.T) { checkSkill(t, dir, id) })
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if ids < 4 {
		t.Errorf("found %d skills, want at least 4", ids)
	}
}

func checkSkill(t *testing.T, dir, id string) {
	for _, f := range []string{"skill.py", "instructions.md", "card.json"} {
		if _, err := fs.Stat(examples.Skills, path.Join(dir, f)); err != nil {
			t.Errorf("missing %s", f)
		}
	}
	raw, err := fs.ReadFile(examples.Skills, path.Join(dir, "manifest.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var m manifest
	if err := yaml.Unmarshal(raw, &m); err != nil {
		t.Fatalf("manifest.yaml: %v", err)
	}
	category, name := path.Split(id)
	if m.Name != name || m.Category+"/" != category {
		t.Errorf("name %q, category %q do not match the folder %s", m.Name, m.Category, id)
	}
	if m.Version == "" || m.Description == "" || m.ShortDescription == "" || m.Issuer == "" || m.Constitution == "" || m.Presentation == nil {
		t.Errorf("manifest lacks a required field: %+v", m)
	}
	if m.Parameters["type"] != "object" || m.Outputs["type"] != "object" {
		t.Errorf("parameters and outputs must be object schemas")
	}
	if _, err := schema.Compile(m.Parameters); err != nil {
		t.Errorf("parameters: %v", err)
	}
	for _, r := range m.Requirements {
		if _, err := pep440.ParseRequirement(r); err != nil {
			t.Errorf("requirements: %v", err)
		}
	}
	card, err := fs.ReadFile(examples.Skills, path.Join(dir, "card.json"))
	if err == nil && !json.Valid(card) {
		t.Errorf("card.json is not valid JSON")
	}
	py, _ := fs.ReadFile(examples.Skills, path.Join(dir, "skill.py"))
	if !strings.Contains(string(py), "from skillware.core.base_skill import BaseSkill") {
		t.Errorf("skill.py does not import BaseSkill")
	}
	if n := strings.Count(string(py), "(BaseSkill):"); n != 1 {
		t.Errorf("skill.py has %d BaseSkill subclasses, want 1", n)
	}
}
