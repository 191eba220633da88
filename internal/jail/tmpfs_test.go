//go:build linux

package jail

import (
	"strings"
	"testing"
)

// TestTmpfsChecked: a tmpfs that is relative, /, in the jail's own
// folders, sizeless, or overlapping a read-only path or another tmpfs is
// refused when the jail is planned; a descriptor below 3 cannot be made
// writable.
func TestTmpfsChecked(t *testing.T) {
	sh := shell(t)
	for _, tc := range []struct {
		name  string
		spec  Spec
		wants string
	}{
		{"relative", Spec{Tmpfs: []TmpfsMount{{Path: "env", Bytes: 1 << 20}}}, "absolute"},
		{"root", Spec{Tmpfs: []TmpfsMount{{Path: "/", Bytes: 1 << 20}}}, "absolute"},
		{"own folder", Spec{Tmpfs: []TmpfsMount{{Path: ScratchDir + "/x", Bytes: 1 << 20}}}, "own folders"},
		{"no size", Spec{Tmpfs: []TmpfsMount{{Path: "/env", Bytes: 0}}}, "no size"},
		{"below a bind", Spec{Tmpfs: []TmpfsMount{{Path: sh.Path + "/x", Bytes: 1 << 20}}}, "overlaps the read-only path"},
		{"above a read path", Spec{ReadPaths: []string{"/etc/hostname"}, Tmpfs: []TmpfsMount{{Path: "/etc", Bytes: 1 << 20}}}, "overlaps the read-only path"},
		{"two nested", Spec{Tmpfs: []TmpfsMount{{Path: "/env", Bytes: 1 << 20}, {Path: "/env/x", Bytes: 1 << 20}}}, "overlaps tmpfs"},
		{"stdio descriptor", Spec{WriteFDs: []int{1}}, "descriptor 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.spec.Root = sh
			_, err := New(tc.spec)
			if err == nil || !strings.Contains(err.Error(), tc.wants) {
				t.Errorf("err = %v, want %q", err, tc.wants)
			}
		})
	}
	if _, err := New(Spec{Root: sh, Tmpfs: []TmpfsMount{{Path: "/env/a", Bytes: 1 << 20}, {Path: "/env/b", Bytes: 1 << 20}}, WriteFDs: []int{3}}); err != nil {
		t.Errorf("two separate tmpfs: %v", err)
	}
}
