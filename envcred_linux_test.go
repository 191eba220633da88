package skillbox_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox"
	"github.com/skillbox-dev/skillbox/internal/skillenv/envtest"
	"github.com/skillbox-dev/skillbox/skill"
)

// credSkill reads the files of its environment's folder (mounted
// read-only in its jail; links and files over 64 KiB left out) and returns
// what it read.
const credSkill = `import os
import alpha
from skillware.core.base_skill import BaseSkill


class S(BaseSkill):
    def execute(self, params):
        d = os.path.dirname(alpha.__file__)
        while d != "/" and not os.path.exists(os.path.join(d, "bin", "python")):
            d = os.path.dirname(d)
        seen = []
        for base, _, files in os.walk(d):
            for f in files:
                p = os.path.join(base, f)
                if os.path.islink(p) or os.path.getsize(p) > 65536:
                    continue
                try:
                    with open(p, "rb") as fh:
                        seen.append(fh.read().decode("latin-1"))
                except OSError:
                    pass
        return {"files": "\n".join(seen)}
`

// The credentials of a private package index (PIP_INDEX_URL's user
// information, as pip takes them) are the operator's, given to pip for the
// build: they reach neither the skill (its environment's folder, which its
// jail shows) nor the messages of a build that failed.
func TestIndexCredentialsStayOutOfTheSandbox(t *testing.T) {
	requireEnvironmentBuilds(t)
	const token = "idx-token-4b1d9e"
	wheels := t.TempDir()
	envtest.WheelOf(t, wheels, "alpha", "1.0", map[string]string{"alpha.py": "VERSION = '1.0'\n"})
	url, _ := envtest.Index(t, wheels)
	url = strings.Replace(url, "http://", "http://reader:"+token+"@", 1)
	root, cache := t.TempDir(), t.TempDir()
	for name, reqs := range map[string]string{"reads": `["alpha"]`, "missing": `["gamma>=9"]`} {
		dir := filepath.Join(root, "test", name)
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "manifest.yaml"), []byte("name: "+name+"\nversion: \"1\"\ndescription: d\nrequirements: "+reqs+"\n"), 0o644)
		os.WriteFile(filepath.Join(dir, "skill.py"), []byte(credSkill), 0o644)
	}
	rt, err := skillbox.New(skillbox.WithRoots(skill.Root{Path: root, Tier: skill.TierProject}), skillbox.WithCacheDir(cache), pipEnv(url))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	res, err := rt.Call(context.Background(), "test/reads", nil, skillbox.CallOptions{Backend: "linux"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(res.Value), "alpha") {
		t.Fatalf("the skill read nothing of its environment: %s", res.Value)
	}
	if strings.Contains(string(res.Value), token) {
		t.Errorf("the skill read the index's credentials in its environment's folder")
	}
	_, err = rt.Call(context.Background(), "test/missing", nil, skillbox.CallOptions{Backend: "linux"})
	if err == nil || !strings.Contains(err.Error(), "gamma>=9") {
		t.Fatalf("err = %v, want the build's failure", err)
	}
	if strings.Contains(err.Error(), token) {
		t.Errorf("a failed build's error quotes the index's credentials: %v", err)
	}
}
