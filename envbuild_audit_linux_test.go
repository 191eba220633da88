package skillbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox"
	"github.com/skillbox-dev/skillbox/audit"
	"github.com/skillbox-dev/skillbox/internal/skillenv/envtest"
	"github.com/skillbox-dev/skillbox/skill"
)

// probeBackend is a PEP 517 build backend that asks the build's egress
// proxy for a host it was not granted, then builds an empty wheel.
const probeBackend = `import os, socket, urllib.parse, zipfile


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    proxy = urllib.parse.urlsplit(os.environ.get("HTTP_PROXY") or os.environ["http_proxy"])
    s = socket.create_connection((proxy.hostname, proxy.port), timeout=10)
    s.sendall(b"CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n")
    s.recv(200)
    s.close()
    name = "probe-1.0-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as z:
        z.writestr("probe-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: probe\nVersion: 1.0\n")
        z.writestr("probe-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: probe\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr("probe-1.0.dist-info/RECORD", "")
    return name
`

// TestEnvironmentBuildAudited: each egress decision of an environment's
// build is an audit record naming the skill and the environment's key —
// the index's host allowed, another host denied.
func TestEnvironmentBuildAudited(t *testing.T) {
	requireEnvironmentBuilds(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	other := l.Addr().(*net.TCPAddr).Port
	dists := t.TempDir()
	envtest.Sdist(t, dists, "probe", "1.0", map[string]string{
		"pyproject.toml":   "[build-system]\nrequires = []\nbuild-backend = \"probe_backend\"\nbackend-path = [\".\"]\n",
		"PKG-INFO":         "Metadata-Version: 2.1\nName: probe\nVersion: 1.0\n",
		"probe_backend.py": fmt.Sprintf(probeBackend, other, other),
	})
	url, _ := envtest.Index(t, dists)
	root := t.TempDir()
	dir := filepath.Join(root, "test", "probe")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "manifest.yaml"), []byte("name: probe\nversion: \"1\"\ndescription: d\nrequirements: [\"probe\"]\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "skill.py"), []byte(envSkill), 0o644)
	var buf bytes.Buffer
	var lines []string
	rt, err := skillbox.New(skillbox.WithRoots(skill.Root{Path: root, Tier: skill.TierProject}),
		skillbox.WithCacheDir(t.TempDir()), pipEnv(url), skillbox.WithEnvSdists(true),
		skillbox.WithAudit(audit.New(&buf)), skillbox.WithEnvProgress(func(l string) { lines = append(lines, l) }))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	st, err := rt.BuildEnvironment(context.Background(), "test/probe", "linux")
	if err != nil {
		t.Fatalf("%v\n%s", err, strings.Join(lines, "\n"))
	}
	index := strings.Split(strings.TrimPrefix(url, "http://"), "/")[0]
	var allowed, denied int
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var r audit.Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		if r.Event != audit.EventEgress || r.Egress == nil {
			continue
		}
		if r.Skill != "test/probe" || r.Egress.EnvBuild != st.Key || !strings.HasPrefix(r.Detail, "environment build: ") {
			t.Errorf("record does not name the build: %s", line)
		}
		switch dest := net.JoinHostPort(r.Egress.Host, strconv.Itoa(r.Egress.Port)); {
		case r.Egress.Decision == "allow" && dest == index:
			allowed++
		case r.Egress.Decision == "deny" && r.Egress.Port == other && r.Outcome == "error":
			denied++
		}
	}
	if allowed == 0 || denied != 1 {
		t.Errorf("audit log (want the index %s allowed, 127.0.0.1:%d denied once):\n%s", index, other, buf.String())
	}
}
