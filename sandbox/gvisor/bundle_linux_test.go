package gvisor

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/skillbox-dev/skillbox/internal/jail"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// An image's top-level tmp, a folder (nearly every image's) or a file,
// does not cover the fresh, writable /tmp the bundle mounts: the last
// mount at /tmp in config.json is the tmpfs, and a file there does not
// make writing the bundle fail.
func TestImageTmpLeavesFreshTmp(t *testing.T) {
	for _, kind := range []string{"folder", "file", "link"} {
		t.Run(kind, func(t *testing.T) {
			rootfs := t.TempDir()
			for _, d := range []string{"usr/bin", "etc"} {
				if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(rootfs, "usr/bin/python3"), []byte("#!/bin/false\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			tmp := filepath.Join(rootfs, "tmp")
			var err error
			switch kind {
			case "folder":
				err = os.Mkdir(tmp, 0o1777)
			case "file":
				err = os.WriteFile(tmp, nil, 0o644)
			case "link":
				err = os.Symlink("/var/tmp", tmp)
			}
			if err != nil {
				t.Fatal(err)
			}
			root := jail.Image{Rootfs: rootfs, Python: "/usr/bin/python3"}
			b, err := writeBundle(t.TempDir(), root, sandbox.Spec{SkillID: "test/tmp"}, []string{"/usr/bin/python3"}, nil)
			if err != nil {
				t.Fatalf("writeBundle: %v", err)
			}
			last := ""
			for _, m := range b.config.Mounts {
				if m.Destination == "/tmp" {
					last = m.Type
				}
			}
			if last != "tmpfs" {
				t.Errorf("the last mount at /tmp is %q, want the fresh tmpfs (mounts %+v)", last, b.config.Mounts)
			}
		})
	}
}
