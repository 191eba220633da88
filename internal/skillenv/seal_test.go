package skillenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// seal checks again, on the host, what the build script refuses, since
// the host does not trust what came out of the build's jail: a link that
// leads out of the tree (but venv's links of bin/ to the base), an entry
// where the host writes its record, and files whose sizes add up to more
// than the limit (a sparse file at its full size).
func TestSealRefuses(t *testing.T) {
	base, err := filepath.EvalSymlinks(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	venv := func(t *testing.T) string {
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "bin"), 0o755)
		os.MkdirAll(filepath.Join(dir, "lib", "python3.11", "site-packages"), 0o755)
		os.Symlink("lib", filepath.Join(dir, "lib64"))
		os.Symlink(base, filepath.Join(dir, "bin", "python3"))
		os.Symlink("python3", filepath.Join(dir, "bin", "python"))
		os.WriteFile(filepath.Join(dir, "lib", "python3.11", "site-packages", "a.py"), []byte("X = 1\n"), 0o644)
		return dir
	}
	if err := seal(venv(t), base, 1<<20); err != nil {
		t.Fatalf("a plain environment: %v", err)
	}
	for name, c := range map[string]struct {
		spoil func(dir string) error
		base  string
		want  string
	}{
		"absolute link": {func(dir string) error { return os.Symlink("/etc", filepath.Join(dir, "lib", "etc")) }, base,
			"symbolic link lib/etc -> /etc, which leads out of it"},
		"link up": {func(dir string) error { return os.Symlink("../../..", filepath.Join(dir, "lib", "up")) }, base,
			"symbolic link lib/up -> ../../.., which leads out of it"},
		"python elsewhere": {func(dir string) error {
			os.Remove(filepath.Join(dir, "bin", "python3"))
			return os.Symlink("/bin/sh", filepath.Join(dir, "bin", "python3"))
		}, base, "symbolic link bin/python3 -> /bin/sh"},
		"no interpreter": {func(dir string) error { return nil }, "", "symbolic link bin/python3 -> " + base},
		"record": {func(dir string) error { return os.Symlink("/tmp/x", filepath.Join(dir, metaFile)) }, base,
			"the environment holds skillbox-env.json, a name skillbox writes itself"},
		"sparse": {func(dir string) error {
			f, err := os.Create(filepath.Join(dir, "sparse.bin"))
			if err != nil {
				return err
			}
			defer f.Close()
			return f.Truncate(2 << 20)
		}, base, "add up to more than its size limit of 1MiB"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := venv(t)
			if err := c.spoil(dir); err != nil {
				t.Fatal(err)
			}
			if err := seal(dir, c.base, 1<<20); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want %q", err, c.want)
			}
		})
	}
}
