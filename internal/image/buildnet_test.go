package image

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/egress"
	"github.com/skillbox-dev/skillbox/internal/image/imagetest"
)

// fetchStep is a RUN step that GETs http://127.0.0.1:port/file with bash
// builtins alone (the base image has no HTTP client, no cat) into out: through the proxy
// its http_proxy names, or straight to the server without one.
func fetchStep(port int, out string) string {
	return fmt.Sprintf(`RUN bash -c 'p=${http_proxy#http://}; [ -n "$p" ] || p=127.0.0.1:%[1]d; exec 3<>/dev/tcp/${p%%:*}/${p##*:} && printf "GET http://127.0.0.1:%[1]d/file HTTP/1.0\r\nHost: 127.0.0.1:%[1]d\r\n\r\n" >&3 && while IFS= read -r l || [ -n "$l" ]; do printf "%%s\n" "$l"; done <&3 > %[2]s'`, port, out)
}

// eventLog collects a build's egress decisions.
type eventLog struct {
	mu  sync.Mutex
	evs []egress.Event
}

func (l *eventLog) add(ev egress.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.evs = append(l.evs, ev)
}

func (l *eventLog) find(decision string, port int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ev := range l.evs {
		if ev.Decision == decision && ev.Host == "127.0.0.1" && ev.Port == port {
			return true
		}
	}
	return false
}

func TestBuildNetworkGrant(t *testing.T) {
	needBuilder(t)
	const content = "fetched through the egress proxy"
	port, conns := imagetest.CountingServer(t, content)
	other, otherConns := imagetest.CountingServer(t, "not granted")
	rule, err := egress.ParseRule(fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	dir := buildContext(t, "FROM oci-archive:base.tar\n"+
		fetchStep(port, "/fetched")+"\n"+
		// The ungranted server through the proxy: refused (403).
		fetchStep(other, "/other")+"\n"+
		// Either server, straight: no route but to the proxy.
		fmt.Sprintf("RUN bash -c 'echo hi > /dev/tcp/127.0.0.1/%d' && echo reached > /direct || echo unreachable > /nodirect\n", port)+
		fmt.Sprintf("RUN bash -c 'echo hi > /dev/tcp/127.0.0.1/%d' && echo reached > /otherdirect || echo unreachable > /nootherdirect\n", other)+
		// Nothing of the host's /sys, resolv.conf or hosts.
		"RUN echo /sys/* > /sysls; for f in /etc/resolv.conf /etc/hosts; do if [ -e $f ]; then echo $f >> /etcfiles; fi; done\n"+
		// The other walls stand: the user namespace, seccomp.
		"RUN read -r inside host n < /proc/self/uid_map; echo \"$host\" > /uidmap\n"+
		"RUN while read -r k v; do case \"$k\" in Seccomp:) echo \"$k $v\";; esac; done < /proc/self/status > /status\n")
	c := newCache(t)
	var progress syncBuffer
	c.Progress = &progress
	var log eventLog
	img, err := c.Build(context.Background(), BuildOptions{Context: dir, Timeout: 10 * time.Minute,
		Network: &egress.Config{Allow: []egress.Rule{rule}, Audit: log.add}})
	if err != nil {
		t.Fatalf("granted build: %v\n%s", err, progress.String())
	}
	root := img.Rootfs
	if got := readFile(t, filepath.Join(root, "fetched")); !strings.Contains(got, "\r\n\r\n"+content) || !strings.HasPrefix(got, "HTTP/1.") {
		t.Errorf("fetched = %q, want the granted server's answer", got)
	}
	if got := readFile(t, filepath.Join(root, "other")); !strings.Contains(strings.SplitN(got, "\n", 2)[0], "403") {
		t.Errorf("the ungranted server through the proxy answered %q, want 403", got)
	}
	if exists(filepath.Join(root, "direct")) || !exists(filepath.Join(root, "nodirect")) ||
		exists(filepath.Join(root, "otherdirect")) || !exists(filepath.Join(root, "nootherdirect")) {
		t.Error("a granted build's RUN step reached a loopback server of the host straight, not through the proxy")
	}
	if got := strings.TrimSpace(readFile(t, filepath.Join(root, "sysls"))); got != "/sys/*" {
		t.Errorf("a granted build's RUN steps see /sys: %s", got)
	}
	if exists(filepath.Join(root, "etcfiles")) {
		t.Errorf("a granted build's RUN steps see the builder's %s", readFile(t, filepath.Join(root, "etcfiles")))
	}
	if got := strings.TrimSpace(readFile(t, filepath.Join(root, "uidmap"))); got != strconv.Itoa(buildUIDBase) {
		t.Errorf("a granted build's RUN steps' root is host uid %q, want %d", got, buildUIDBase)
	}
	if got := readFile(t, filepath.Join(root, "status")); got != "Seccomp: 2\n" {
		t.Errorf("a granted build's RUN steps' seccomp: %q, want a filter", got)
	}
	if n := otherConns.Load(); n != 0 {
		t.Errorf("the ungranted server got %d connections", n)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("the granted server got %d connections, want 1 (the proxy's)", n)
	}
	// The proxy's variables were the RUN steps', not the image's.
	for _, env := range img.Config.Env {
		if strings.Contains(strings.ToLower(env), "proxy") {
			t.Errorf("the image keeps the build's proxy variable %s", env)
		}
	}
	// Audited like a call's: the allowed request and the refused one.
	if !log.find(egress.DecisionAllow, port) {
		t.Errorf("no allow event for the granted server: %+v", log.evs)
	}
	if !log.find(egress.DecisionDeny, other) {
		t.Errorf("no deny event for the ungranted server: %+v", log.evs)
	}
	checkNoBuildLeftovers(t, c)

	// Without the grant the same fetch fails the build, naming the
	// grant, and reaches nothing.
	df := "FROM oci-archive:base.tar\n" + fetchStep(port, "/fetched") + "\n"
	dir = buildContext(t, df)
	_, err = c.Build(context.Background(), BuildOptions{Context: dir, Timeout: 10 * time.Minute})
	wantKind(t, err, errdefs.Invalid, "--allow-net")
	if n := conns.Load(); n != 1 {
		t.Errorf("a build without a grant reached the server (%d connections in all)", n-1)
	}
	checkNoBuildLeftovers(t, c)
}

// TestBuildNetworkFlags: RUN --network is the grant's to allow; a grant
// with secrets or without a host is refused.
func TestBuildNetworkFlags(t *testing.T) {
	dir := t.TempDir()
	c := newCache(t)
	noBuilder := Builder{Name: "buildah", Path: filepath.Join(dir, "no-such-buildah"), Usable: true}
	rule, _ := egress.ParseRule("pypi.org:443")
	grant := &egress.Config{Allow: []egress.Rule{rule}}
	for _, tc := range []struct {
		dockerfile string
		grant      *egress.Config
		kind       errdefs.Kind
		msg        string
	}{
		{"FROM scratch\nRUN --network=host true\n", nil, errdefs.Denied, "--allow-net"},
		{"FROM scratch\nRUN --network=default true\n", nil, errdefs.Denied, "--allow-net"},
		{"FROM scratch\nRUN --network=bridge true\n", grant, errdefs.Denied, "only through the egress proxy"},
		{"FROM scratch\nRUN true\n", &egress.Config{}, errdefs.Invalid, "without a host"},
		{"FROM scratch\nRUN true\n", &egress.Config{Allow: grant.Allow, Secrets: []egress.Secret{{Name: "K", Placeholder: egress.NewPlaceholder(), Value: "v", Hosts: grant.Allow}}}, errdefs.Invalid, "no secrets"},
	} {
		writeFile(t, filepath.Join(dir, "Dockerfile"), tc.dockerfile)
		_, err := c.Build(context.Background(), BuildOptions{Context: dir, Builder: noBuilder, Network: tc.grant})
		wantKind(t, err, tc.kind, tc.msg)
	}
	for _, df := range []string{"FROM scratch\nRUN --network=host true\n", "FROM scratch\nRUN --network=default true\nRUN --network=none true\n"} {
		writeFile(t, filepath.Join(dir, "Dockerfile"), df)
		_, err := c.Build(context.Background(), BuildOptions{Context: dir, Builder: noBuilder, Network: grant})
		if k := errdefs.KindOf(err); k != errdefs.Unsupported && k != errdefs.Unavailable {
			t.Errorf("granted %q: %v; want it to reach the builder", df, err)
		}
	}
}

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A granted build's builder runs where no loopback registry is: it pulls
// the bases first, on skillbox's side of the namespace.
func TestBuildNetworkGrantFromLoopbackRegistry(t *testing.T) {
	needBuilder(t)
	host := loopbackRegistry(t)
	push(t, host+"/base:1", shellImage(t))
	port, conns := imagetest.CountingServer(t, "from a registry base")
	rule, err := egress.ParseRule(fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	dir := buildContext(t, "FROM "+host+"/base:1\n"+fetchStep(port, "/fetched")+"\n")
	c := newCache(t)
	var progress syncBuffer
	c.Progress = &progress
	img, err := c.Build(context.Background(), BuildOptions{Context: dir, Timeout: 10 * time.Minute,
		Network: &egress.Config{Allow: []egress.Rule{rule}}})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, progress.String())
	}
	if got := readFile(t, filepath.Join(img.Rootfs, "fetched")); !strings.Contains(got, "from a registry base") {
		t.Errorf("fetched = %q", got)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("the granted server got %d connections, want 1", n)
	}
	checkNoBuildLeftovers(t, c)
}
