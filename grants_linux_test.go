package skillbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/skillbox-dev/skillbox"
	"github.com/skillbox-dev/skillbox/audit"
	"github.com/skillbox-dev/skillbox/policy"
	"github.com/skillbox-dev/skillbox/skill"
)

// fetchSkill is an unmodified Skillware skill (no permissions block) that
// fetches params.urls and reports each status or error type.
const fetchSkill = `import urllib.error
import urllib.request

from skillware.core.base_skill import BaseSkill


class Fetch(BaseSkill):
    def execute(self, params):
        out = {}
        for u in params["urls"]:
            try:
                with urllib.request.urlopen(u, timeout=10) as r:
                    out[u] = r.status
            except urllib.error.HTTPError as e:
                out[u] = e.code
            except Exception as e:
                out[u] = type(e).__name__
        return out
`

// TestServeGrantsNoBlockLinux: a Runtime used as serve uses it (the
// call's grants are not for this skill alone) gives a skill without a
// permissions block network access only from its policy entry; its flags
// are not given. A request to a host the entry does not cover is refused
// by the egress proxy and reported in the warnings, naming the policy
// entry; without a network grant at all, the harness's hint names it.
func TestServeGrantsNoBlockLinux(t *testing.T) {
	requireBackend(t, "linux")
	if os.Geteuid() != 0 {
		t.Skip("needs root for the linux jail's network namespace")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "hi") }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	root := t.TempDir()
	dir := filepath.Join(root, "test", "fetch")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "manifest.yaml"), []byte("name: fetch\nversion: \"1\"\ndescription: fetches\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "skill.py"), []byte(fetchSkill), 0o644)
	pol, err := policy.Parse("/etc/p.yaml", []byte(fmt.Sprintf("skills:\n  test/fetch:\n    net: [\"api.test:%s\"]\n    egress_resolve: [\"api.test=127.0.0.1\"]\n", port)))
	if err != nil {
		t.Fatal(err)
	}
	// An egress record is written when its connection ends, which can be
	// after the call returned (a spare's jail closes 5 ms later): the test
	// reads the log while the Runtime may still write to it.
	var (
		logMu sync.Mutex
		log   bytes.Buffer
	)
	rt, err := skillbox.New(skillbox.WithRoots(skill.Root{Path: root, Tier: skill.TierProject}), skillbox.WithPolicy(pol),
		skillbox.WithAudit(audit.New(lockedWriter{&logMu, &log})), skillbox.WithCacheDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()

	granted, other := "http://api.test:"+port+"/", "http://other.test:"+port+"/"
	p, _ := json.Marshal(map[string]any{"urls": []string{granted, other}})
	opts := skillbox.CallOptions{Backend: "linux", AllowNet: []string{"other.test:" + port}}
	res, err := rt.Call(context.Background(), "test/fetch", p, opts)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	json.Unmarshal(res.Value, &got)
	if got[granted] != float64(200) || got[other] != float64(403) {
		t.Fatalf("result %s", res.Value)
	}
	warnings := strings.Join(res.Warnings, "\n")
	for _, want := range []string{
		fmt.Sprintf(`--allow-net other.test:%s: skill test/fetch does not request it, so it is not given (its manifest has no permissions block: grant it to this skill alone with net: [other.test:%s] under skills["test/fetch"] in /etc/p.yaml)`, port, port),
		fmt.Sprintf(`egress denied: the skill tried to reach other.test:%s, which is not granted (grant with net: [other.test:%s] under skills["test/fetch"] in /etc/p.yaml)`, port, port),
	} {
		if !strings.Contains(warnings, want) {
			t.Errorf("warnings lack %q:\n%s", want, warnings)
		}
	}
	logMu.Lock()
	recs, _, _ := audit.Read(strings.NewReader(log.String()), audit.Filter{})
	logMu.Unlock()
	var call *audit.Record
	for i := range recs {
		if recs[i].Event == audit.EventCall {
			call = &recs[i]
		}
	}
	if call == nil || call.Grants == nil || strings.Join(call.Grants.Network, ",") != "api.test:"+port || !call.Grants.OperatorOnly ||
		!strings.Contains(strings.Join(call.Warnings, "\n"), "egress denied: the skill tried to reach other.test:"+port) {
		t.Errorf("call record %+v", call)
	}

	// Another skill without an entry: no network, the harness's hint.
	dir2 := filepath.Join(root, "test", "fetch2")
	os.MkdirAll(dir2, 0o755)
	os.WriteFile(filepath.Join(dir2, "manifest.yaml"), []byte("name: fetch2\nversion: \"1\"\ndescription: fetches\n"), 0o644)
	os.WriteFile(filepath.Join(dir2, "skill.py"), []byte(fetchSkill), 0o644)
	p, _ = json.Marshal(map[string]any{"urls": []string{other}})
	res, err = rt.Call(context.Background(), "test/fetch2", p, skillbox.CallOptions{Backend: "linux"})
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`the skill tried to reach other.test:%s, which is not granted (a hint, not a control: grant with net: [other.test:%s] under skills["test/fetch2"] in /etc/p.yaml)`, port, port)
	if !strings.Contains(strings.Join(res.Warnings, "\n"), want) {
		t.Errorf("warnings lack %q:\n%s", want, strings.Join(res.Warnings, "\n"))
	}
}
