package cli

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/internal/image/imagetest"
)

// `image build SKILL --allow-net HOST:PORT` lets the build's RUN steps
// reach that host through the egress proxy, each decision in the audit
// log; without it the build fails naming the flag and reaches nothing.
// The policy file's skills.ID.build_net grants the same to the build, and
// to a build on first use (--build-images), never run's --allow-net.
func TestImageBuildAllowNet(t *testing.T) {
	requireBuilder(t)
	port, conns := imagetest.CountingServer(t, "fetched by the build")
	hostPort := fmt.Sprintf("127.0.0.1:%d", port)
	h := newHarness(t)
	dir := builtSkill(t, h)
	// The RUN step fetches with Python's urllib, which honours the proxy
	// variables the build gives RUN steps.
	df := "FROM oci:image\nCOPY marker.txt /built-marker\n" +
		`RUN ["python3", "-c", "import urllib.request; open('/built-marker', 'wb').write(urllib.request.urlopen('http://` + hostPort + `/x', timeout=30).read())"]` + "\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(flags ...string) outcome {
		return h.run(append([]string{"run", "test/built", "--backend", "linux", "--trust-remote-code", "--json"}, flags...)...)
	}

	o := h.run("image", "build", "test/built")
	if o.code == 0 || !strings.Contains(o.stderr, "--allow-net") {
		t.Fatalf("image build without a grant: exit %d %s; want a failure naming --allow-net", o.code, o.stderr)
	}
	if n := conns.Load(); n != 0 {
		t.Fatalf("a build without a grant reached the server (%d connections)", n)
	}

	o = h.run("image", "build", "test/built", "--allow-net", hostPort)
	if o.code != 0 || !strings.HasPrefix(o.stdout, "sha256:") {
		t.Fatalf("image build --allow-net: exit %d %s %s", o.code, o.stdout, o.stderr)
	}
	if o := run(); o.code != 0 || !strings.Contains(o.stdout, `"marker":"fetched by the build"`) {
		t.Fatalf("run after the granted build: exit %d %s %s", o.code, o.stdout, o.stderr)
	}
	audited := buildEgressAudited(h, hostPort)
	if audited != 1 {
		t.Errorf("no audit record of the build's request to %s:\n%v", hostPort, h.auditRecords())
	}

	// An edit is another bundle digest. run's --allow-net is the call's
	// grant, not its build's: the build on first use has no network.
	if err := os.WriteFile(filepath.Join(dir, "marker.txt"), []byte("edited\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := conns.Load()
	if o := run("--build-images", "--allow-net", hostPort); o.code == 0 {
		t.Fatalf("run --build-images --allow-net built with the call's grant: %s", o.stdout)
	}
	if n := conns.Load(); n != before {
		t.Fatalf("a build on first use without build_net reached the server")
	}
	// build_net grants it.
	pol := filepath.Join(t.TempDir(), "policy.yaml")
	text := fmt.Sprintf("build_images: true\nskills:\n  test/built:\n    build_net: [%q]\n", hostPort)
	if err := os.WriteFile(pol, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if o := run("--policy", pol); o.code != 0 || !strings.Contains(o.stdout, `"marker":"fetched by the build"`) || !strings.Contains(o.stderr, "building Dockerfile") {
		t.Fatalf("run with build_net and build_images: exit %d %s %s", o.code, o.stdout, o.stderr)
	}
	if n := conns.Load(); n != before+1 {
		t.Errorf("the build on first use made %d connections, want 1", n-before)
	}
	if n := buildEgressAudited(h, hostPort); n != audited+1 {
		t.Errorf("the build on first use's request is not audited (%d records, was %d)", n, audited)
	}
}

// buildEgressAudited counts the allowed egress records of test/built's
// image build to hostPort in h's audit log.
func buildEgressAudited(h *harness, hostPort string) int {
	n := 0
	host, port, _ := net.SplitHostPort(hostPort)
	for _, r := range h.auditRecords() {
		e, _ := r["egress"].(map[string]any)
		if r["event"] == "egress" && r["skill"] == "test/built" && e["decision"] == "allow" &&
			e["host"] == host && fmt.Sprint(e["port"]) == port && e["image_build"] == "Dockerfile" {
			n++
		}
	}
	return n
}
