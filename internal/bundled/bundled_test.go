package bundled

import (
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
)

func TestMaterialize(t *testing.T) {
	fsys := fstest.MapFS{
		"text/hello/manifest.yaml": {Data: []byte("name: hello\n")},
		"text/hello/skill.py":      {Data: []byte("print(1)\n")},
	}
	cache := t.TempDir()
	dir, err := Materialize(fsys, cache)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "text/hello/manifest.yaml"))
	if err != nil || string(got) != "name: hello\n" {
		t.Fatalf("read back %q, %v", got, err)
	}
	again, err := Materialize(fsys, cache)
	if err != nil || again != dir {
		t.Fatalf("second call: %q, %v; want %q", again, err, dir)
	}
	fsys["text/hello/skill.py"] = &fstest.MapFile{Data: []byte("print(2)\n")}
	changed, err := Materialize(fsys, cache)
	if err != nil {
		t.Fatal(err)
	}
	if changed == dir {
		t.Error("changed content reused the old folder")
	}
	entries, _ := os.ReadDir(cache)
	if len(entries) != 2 {
		t.Errorf("cache holds %d entries, want 2 (no temporary leftovers)", len(entries))
	}
}
