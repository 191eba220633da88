package skill

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/skillbox-dev/skillbox/errdefs"
)

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	writeSkill(t, dir, "wallet")
	writeFiles(t, dir, map[string]string{
		InstructionsFile: "Use this tool to screen wallets.\n",
		CardFile:         "  {\"title\": \"Wallet\"}\n",
	})
	b, err := Load(dir + "/./")
	if err != nil {
		t.Fatal(err)
	}
	want := &Bundle{Dir: dir, Instructions: "Use this tool to screen wallets.\n", Card: []byte(`{"title": "Wallet"}`)}
	if diff := cmp.Diff(want, b, cmp.FilterPath(func(p cmp.Path) bool { return p.String() == "Manifest" }, cmp.Ignore()), cmpopts.IgnoreUnexported(Bundle{})); diff != "" {
		t.Errorf("bundle (-want +got):\n%s", diff)
	}
	if b.Manifest == nil || b.Manifest.Name != "wallet" {
		t.Errorf("manifest not loaded: %+v", b.Manifest)
	}
}

func TestLoadOptionalFiles(t *testing.T) {
	dir := writeSkill(t, t.TempDir(), "w")
	b, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if b.Instructions != "" || b.Card != nil {
		t.Errorf("want empty instructions and nil card, got %q, %q", b.Instructions, b.Card)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		kind  errdefs.Kind
		want  []string
	}{
		{"missing dir", func(t *testing.T, dir string) { os.Remove(dir) }, errdefs.NotFound, []string{"does not exist"}},
		{"not a dir", func(t *testing.T, dir string) {
			os.Remove(dir)
			os.WriteFile(dir, nil, 0o644)
		}, errdefs.Invalid, []string{"is not a directory"}},
		{"no manifest", func(t *testing.T, dir string) {
			writeFiles(t, dir, map[string]string{CodeFile: ""})
		}, errdefs.Invalid, []string{"is not a skill folder: no manifest.yaml"}},
		{"bad manifest names full path", func(t *testing.T, dir string) {
			writeFiles(t, dir, map[string]string{ManifestFile: "name: a\nversion: 1\ndescription: d\nparameters: []\n", CodeFile: ""})
		}, errdefs.Invalid, []string{string(filepath.Separator) + "manifest.yaml:4: parameters: must be a mapping"}},
		{"no skill.py", func(t *testing.T, dir string) {
			writeFiles(t, dir, map[string]string{ManifestFile: manifestFor("a")})
		}, errdefs.Invalid, []string{"has no skill.py"}},
		{"skill.py a directory", func(t *testing.T, dir string) {
			writeFiles(t, dir, map[string]string{ManifestFile: manifestFor("a"), "skill.py/x": ""})
		}, errdefs.Invalid, []string{"skill.py must be a regular file, not directory"}},
		{"invalid card", func(t *testing.T, dir string) {
			writeSkill(t, dir, "a")
			writeFiles(t, dir, map[string]string{CardFile: "{\n  \"a\": 1,\n  \"b\": }\n"})
		}, errdefs.Invalid, []string{"card.json: line 3, column 8", "invalid JSON"}},
		{"truncated card", func(t *testing.T, dir string) {
			writeSkill(t, dir, "a")
			writeFiles(t, dir, map[string]string{CardFile: "{\"a\": [1,\n"})
		}, errdefs.Invalid, []string{"card.json: line 2", "unexpected end"}},
		{"card with trailing data", func(t *testing.T, dir string) {
			writeSkill(t, dir, "a")
			writeFiles(t, dir, map[string]string{CardFile: "{}\n{}\n"})
		}, errdefs.Invalid, []string{"card.json: line 2", "extra data"}},
		{"manifest symlink outside", func(t *testing.T, dir string) {
			outside := filepath.Join(t.TempDir(), "m.yaml")
			os.WriteFile(outside, []byte(manifestFor("a")), 0o644)
			writeFiles(t, dir, map[string]string{CodeFile: ""})
			os.Symlink(outside, filepath.Join(dir, ManifestFile))
		}, errdefs.Invalid, []string{"symlink manifest.yaml -> ", "points outside the bundle"}},
		{"manifest symlink into __pycache__", func(t *testing.T, dir string) {
			writeFiles(t, dir, map[string]string{"__pycache__/m.yaml": manifestFor("a"), CodeFile: ""})
			os.Symlink("__pycache__/m.yaml", filepath.Join(dir, ManifestFile))
		}, errdefs.Invalid, []string{"manifest.yaml is a symlink to __pycache__/m.yaml, which is left out of the bundle"}},
		{"card symlink to the signature", func(t *testing.T, dir string) {
			writeSkill(t, dir, "a")
			writeFiles(t, dir, map[string]string{SignatureFile: "{}"})
			os.Symlink(SignatureFile, filepath.Join(dir, CardFile))
		}, errdefs.Invalid, []string{"card.json is a symlink to skill.minisig, which is left out of the bundle"}},
		{"instructions too large", func(t *testing.T, dir string) {
			writeSkill(t, dir, "a")
			writeFiles(t, dir, map[string]string{InstructionsFile: strings.Repeat("x", maxAuxFile+1)})
		}, errdefs.Invalid, []string{"instructions.md is too large"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "skill")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			tt.setup(t, dir)
			b, err := Load(dir)
			if err == nil {
				t.Fatalf("Load succeeded: %+v", b)
			}
			if k := errdefs.KindOf(err); k != tt.kind {
				t.Errorf("kind = %q, want %q (%v)", k, tt.kind, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadManifestSymlinkInside(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"meta/m.yaml": manifestFor("a"), CodeFile: ""})
	if err := os.Symlink("meta/m.yaml", filepath.Join(dir, ManifestFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err != nil {
		t.Fatalf("Load with an inside symlink: %v", err)
	}
}
