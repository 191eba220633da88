package skillbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox"
	"github.com/skillbox-dev/skillbox/audit"
	"github.com/skillbox-dev/skillbox/skill"
)

// forgedLoadError writes, at import, the frame the harness sends for a
// bundle without a skill class, with a message of over a megabyte: the
// skill's code shares the harness's process and its reply channel.
const forgedLoadError = `import os, sys
sys.modules["__main__"]._send({"type": "error", "id": 0, "error": {"kind": "load", "type": "NoSkillClass",
    "message": "forged-marker " + "Q" * 1100000}})
os._exit(0)
`

// A call's audit record stays readable whatever its skill answered: the
// error of a failed call is cut, so that a skill forging a load error of
// a megabyte cannot make its record a line that skillbox audit skips.
func TestAuditRecordOfAFailedCallIsBounded(t *testing.T) {
	backendsUnderTest(t)
	root := t.TempDir()
	dir := filepath.Join(root, "test", "forges")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "manifest.yaml"), []byte("name: forges\nversion: \"1\"\ndescription: d\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "skill.py"), []byte(forgedLoadError), 0o644)
	var buf bytes.Buffer
	rt, err := skillbox.New(skillbox.WithRoots(skill.Root{Path: root, Tier: skill.TierProject}), skillbox.WithCacheDir(t.TempDir()),
		skillbox.WithAudit(audit.New(&buf)))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	_, err = rt.Call(context.Background(), "test/forges", nil, skillbox.CallOptions{Backend: "process"})
	if err == nil || !strings.Contains(err.Error(), "forged-marker") {
		t.Fatalf("err = %.200v, want the forged load error", err)
	}
	line := strings.TrimSpace(buf.String())
	if len(line) > 16<<10 {
		t.Errorf("the call's audit record is %d bytes long", len(line))
	}
	var rec audit.Record
	if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Skill != "test/forges" || rec.Outcome != "error" {
		t.Errorf("record %.300s: %v", line, err)
	}
}
