package skill

import (
	"os"
	"path/filepath"
	"testing"
)

// writeFiles creates files (slash paths relative to dir) with the given
// contents, making parent directories.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// manifestFor is a minimal valid manifest for a skill called name.
func manifestFor(name string) string {
	return "name: " + name + "\nversion: 1.0.0\ndescription: The " + name + " skill.\n"
}

// writeSkill creates a minimal valid skill folder dir whose manifest names
// the skill name, and returns dir.
func writeSkill(t *testing.T, dir, name string) string {
	t.Helper()
	writeFiles(t, dir, map[string]string{
		ManifestFile: manifestFor(name),
		CodeFile:     "from skillware.core.base_skill import BaseSkill\n",
	})
	return dir
}
