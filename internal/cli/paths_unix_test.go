//go:build unix

package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A ./skills folder of a parent that another user owns (the reviewer's
// shared /tmp-like folder with a planted text/word_stats) is shown as
// ignored by paths, is not listed, and its skill does not resolve.
func TestPathsIgnoresAnotherUsersSkillsFolder(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a folder to another user")
	}
	h := rootsHarness(t)
	planted := filepath.Join(filepath.Dir(h.project), "skills")
	putSkill(t, planted, "text/planted")
	if err := os.Lchown(planted, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	want := planted + " is not searched: it belongs to uid 65534"

	o := h.run("paths")
	if o.code != 0 || !strings.Contains(o.stderr, "skillbox: warning: "+want) {
		t.Fatalf("paths: exit %d, stderr %q; want the warning %q", o.code, o.stderr, want)
	}
	if !strings.Contains(o.stdout, "ignored") {
		t.Errorf("paths does not show the folder as ignored:\n%s", o.stdout)
	}
	o = h.run("paths", "--json")
	var root map[string]any
	for _, r := range o.envelope(t)["roots"].([]any) {
		if r := r.(map[string]any); r["path"] == planted {
			root = r
		}
	}
	if root["ignored"] != true || root["exists"] != false || !strings.HasPrefix(root["problem"].(string), want) {
		t.Errorf("paths --json root %v, want %s ignored with the problem", root, planted)
	}
	if o := h.run("list"); strings.Contains(o.stdout, "text/planted") {
		t.Errorf("list shows the planted skill:\n%s", o.stdout)
	}
	if o := h.run("inspect", "text/planted", "--json"); o.code != 2 || !strings.Contains(o.stdout, "check the roots: "+want) {
		t.Errorf("inspect: exit %d, stdout %s; want not_found naming the ignored folder", o.code, o.stdout)
	}
}
