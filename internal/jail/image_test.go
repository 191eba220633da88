//go:build linux

package jail

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/pyinterp"
)

func TestImageEnv(t *testing.T) {
	got := ImageEnv([]string{"PATH=/opt/bin:/usr/bin", "LD_PRELOAD=/evil.so", "LD_LIBRARY_PATH=/evil", "PYTHONPATH=/evil",
		"PYTHONSTARTUP=/evil.py", "pythonhome=/evil", "https_proxy=http://evil", "NO_PROXY=*", "LANG=de_DE.UTF-8",
		"APP=1", "APP=2", "bad name=x", "=x", "novalue", "1X=y", "NUL=a\x00b"})
	want := []string{"APP=2", "LANG=de_DE.UTF-8", "PATH=/opt/bin:/usr/bin"}
	if !slices.Equal(got, want) {
		t.Errorf("ImageEnv = %q, want %q", got, want)
	}
	img := Image{Rootfs: "/x", Python: "/usr/bin/python3", Environ: want}
	env := img.Env(map[string]string{"APP": "granted", "HOME": "/root", "TOKEN": "t"})
	for _, kv := range []string{"APP=granted", "PATH=/opt/bin:/usr/bin", "HOME=" + ScratchDir, "TMPDIR=" + ScratchDir, "LANG=C.UTF-8", "TOKEN=t"} {
		if !slices.Contains(env, kv) {
			t.Errorf("Env = %q lacks %s", env, kv)
		}
	}
	if env := (Image{}).Env(nil); !slices.Contains(env, "PATH=/usr/local/bin:/usr/bin:/bin") {
		t.Errorf("an image without PATH gets %q", env)
	}
}

// fakeRootfs makes an image root with the given files (path -> content;
// content "->X" makes a symbolic link to X).
func fakeRootfs(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, c := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		if target, ok := strings.CutPrefix(c, "->"); ok {
			err = os.Symlink(target, full)
		} else {
			err = os.WriteFile(full, []byte(c), 0o755)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestNewImage(t *testing.T) {
	root := fakeRootfs(t, map[string]string{
		"usr/bin/python3.12":       "elf",
		"usr/local/bin/python3":    "->/usr/bin/python3.12",
		"opt/py/bin/python3":       "->../../../../../../usr/bin/python3.12", // .. stops at the image's /
		"escape/bin/python3":       "->/../../../../usr/bin/python3",         // not the host's
		"proc/bin/python3":         "elf",
		"viaproc/bin/python3":      "->/proc/bin/python3",
		"noexec/bin/python3":       "",
		"dir/bin/python3/.keep":    "",
		"bin":                      "->usr/bin",
		"usr/bin/notpython/python": "elf",
	})
	if err := os.Chmod(filepath.Join(root, "noexec/bin/python3"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, python string
		env          []string
		want, err    string
	}{
		{"PATH search", "", []string{"PATH=/nothing:/usr/local/bin"}, "/usr/local/bin/python3", ""},
		{"default PATH", "", nil, "/usr/local/bin/python3", ""},
		{"relative links stay inside", "", []string{"PATH=/opt/py/bin"}, "/opt/py/bin/python3", ""},
		{"named", "/usr/bin/python3.12", nil, "/usr/bin/python3.12", ""},
		{"named through a top-level link", "/bin/python3.12", nil, "/bin/python3.12", ""},
		{"absolute link resolved in the image", "", []string{"PATH=/escape/bin"}, "", "no python3 on its PATH (looked for /escape/bin/python3)"},
		{"own folder", "/proc/bin/python3", nil, "", "which the jail's own folders cover"},
		{"through an own folder", "/viaproc/bin/python3", nil, "", "which the jail's own folders cover"},
		{"not executable", "/noexec/bin/python3", nil, "", "not an executable file"},
		{"a folder", "/dir/bin/python3", nil, "", "not an executable file"},
		{"missing", "/usr/bin/python2", nil, "", "not in the image"},
		{"relative", "usr/bin/python3.12", nil, "", "want an absolute, clean path"},
		{"none", "", []string{"PATH=/usr/bin/notpython:relative"}, "", "looked for /usr/bin/notpython/python3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, err := NewImage(root, tt.python, tt.env)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, errdefs.ErrInvalid) {
					t.Fatalf("err = %v, want invalid with %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if img.Program() != tt.want {
				t.Errorf("Program() = %s, want %s", img.Program(), tt.want)
			}
		})
	}
}

func TestTreeMounts(t *testing.T) {
	root := fakeRootfs(t, map[string]string{"usr/bin/x": "x", "etc/marker": "m", "lib64": "->usr/lib64",
		"proc/x": "x", "dev/null": "x", "skill/s": "s", "scratch/s": "s", ".skillbox-egress/ca.pem": "x", "topfile": "f"})
	ops, err := treeMounts(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, op := range ops {
		got = append(got, op.Kind+" "+op.Dst+" "+op.Target)
	}
	want := []string{"bind /etc ", "symlink /lib64 usr/lib64", "bind /topfile ", "bind /usr "}
	if !slices.Equal(got, want) {
		t.Errorf("ops = %q, want %q", got, want)
	}
	host := t.TempDir()
	if _, err := treeMounts(root, []string{host}); err != nil {
		t.Errorf("a read path beside the image's entries: %v", err)
	}
	if err := os.MkdirAll(filepath.Join(root, strings.Split(host, "/")[1]), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := treeMounts(root, []string{host}); !errors.Is(err, errdefs.ErrUnsupported) {
		t.Errorf("a read path inside an image folder: %v, want unsupported", err)
	}
}

// copyTree copies host paths into root at the same paths: plan's symbolic
// links recreated, its binds copied (folders whole).
func copyTree(t *testing.T, root string, paths []string, skip func(string) bool) {
	t.Helper()
	ops, err := plan(paths)
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range ops {
		dst := filepath.Join(root, op.Dst)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if op.Kind == "symlink" {
			if err := os.Symlink(op.Target, dst); err != nil && !os.IsExist(err) {
				t.Fatal(err)
			}
			continue
		}
		err := filepath.WalkDir(op.Src, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if skip != nil && skip(p) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			out := filepath.Join(dst, strings.TrimPrefix(p, op.Src))
			fi, err := d.Info()
			if err != nil {
				return err
			}
			switch {
			case d.IsDir():
				return os.MkdirAll(out, 0o755)
			case fi.Mode()&fs.ModeSymlink != 0:
				target, err := os.Readlink(p)
				if err != nil {
					return err
				}
				return os.Symlink(target, out)
			case fi.Mode().IsRegular():
				return copyFile(p, out, fi.Mode().Perm())
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// withSonames adds to paths the symbolic links beside each file that lead
// to it (libfoo.so.1 -> libfoo.so.1.2.3), which the loader looks up.
func withSonames(paths []string) []string {
	out := slices.Clone(paths)
	for _, p := range paths {
		ents, err := os.ReadDir(filepath.Dir(p))
		if err != nil {
			continue
		}
		for _, e := range ents {
			l := filepath.Join(filepath.Dir(p), e.Name())
			if e.Type()&fs.ModeSymlink != 0 {
				if real, err := filepath.EvalSymlinks(l); err == nil && real == p {
					out = append(out, l)
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// TestLaunchImage starts the host's sh, copied into an image root with a
// marker only the image has, in a jail of the Image root: the jail's / is
// the image's (the marker, not the host's files), read-only, and a
// set-user-id root binary of the image runs without privilege.
func TestLaunchImage(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: jails are tested as root (CI runs as root)")
	}
	if err := Usable(); err != nil {
		t.Skipf("host cannot build jails: %v", err)
	}
	sh, err := filepath.EvalSymlinks("/bin/sh")
	if err != nil {
		t.Skipf("no /bin/sh: %v", err)
	}
	id, err := exec.LookPath("id")
	if err != nil {
		t.Skip("no id(1)")
	}
	id, _ = filepath.EvalSymlinks(id)
	root := t.TempDir()
	paths := append([]string{sh, id}, pyinterp.ELFDeps(sh)...)
	paths = append(paths, pyinterp.ELFDeps(id)...)
	if _, err := os.Stat("/etc/ld.so.cache"); err == nil {
		paths = append(paths, "/etc/ld.so.cache")
	}
	copyTree(t, root, withSonames(paths), nil)
	if err := os.WriteFile(filepath.Join(root, "image-marker"), []byte("from the image\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A set-user-id root copy of id (the unpacker strips such bits; this
	// tree is made by hand to check the mount and no_new_privs too).
	suid := filepath.Join(root, "suid-id")
	if err := copyFile(id, suid, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(suid, 0o4755|fs.ModeSetuid); err != nil {
		t.Fatal(err)
	}
	img, err := NewImage(root, sh, []string{"PATH=/usr/bin:/bin", "LD_PRELOAD=/evil.so", "IMAGE_VAR=kept"})
	if err != nil {
		t.Fatal(err)
	}
	canary := filepath.Join(t.TempDir(), "host-canary")
	if err := os.WriteFile(canary, []byte("host"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := Spec{Root: img, Env: map[string]string{"GRANTED": "yes"}}
	BestEffort(&spec)
	j, err := New(spec)
	if err != nil {
		t.Fatal(err)
	}
	script := `echo "pid=$$ cwd=$(pwd) env=$IMAGE_VAR,$GRANTED,${LD_PRELOAD:-none},$PATH"
read m < /image-marker; echo "marker=$m"
if [ -e ` + canary + ` ]; then echo canary=visible; else echo canary=hidden; fi
if echo x > /x 2>/dev/null; then echo root=writable; else echo root=read-only; fi
if echo x > /image-marker 2>/dev/null; then echo image=writable; else echo image=read-only; fi
echo "suid=$(/suid-id -u 2>&1)"`
	got := runShell(t, j, script)
	for _, want := range []string{"pid=1 cwd=/scratch env=kept,yes,none,/usr/bin:/bin\n", "marker=from the image\n", "canary=hidden\n",
		"root=read-only\n", "image=read-only\n", "suid=" + strconv.Itoa(j.base.UID) + "\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("jailed shell said %q, want %q in it", got, want)
		}
	}
}
