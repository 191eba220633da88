//go:build linux

package linux

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// listenBoth opens a TCP listener on 127.0.0.1 and ::1 (same port) for the
// duration of the test and returns the port.
func listenBoth(t *testing.T) (string, error) {
	l4, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	t.Cleanup(func() { l4.Close() })
	port := strconv.Itoa(l4.Addr().(*net.TCPAddr).Port)
	if l6, err := net.Listen("tcp6", "[::1]:"+port); err == nil {
		t.Cleanup(func() { l6.Close() })
	}
	return port, nil
}

func TestRefusals(t *testing.T) {
	requireRoot(t)
	dir := bundle(t, "        return {}")
	tests := []struct {
		name string
		fake map[string]string
		spec sandbox.Spec
		kind errdefs.Kind
		want string
	}{
		{"network grant without a network namespace", map[string]string{LayerNetNS: "fake"},
			sandbox.Spec{Network: []sandbox.HostPort{{Host: "example.com", Port: 443}}, BestEffort: true},
			errdefs.Unsupported, "network namespace"},
		{"landlock missing", map[string]string{LayerLandlock: "fake: not compiled in"}, sandbox.Spec{},
			errdefs.Unavailable, "landlock"},
		{"seccomp missing", map[string]string{LayerSeccomp: "fake"}, sandbox.Spec{}, errdefs.Unavailable, "seccomp"},
		{"memory cgroup missing", map[string]string{LayerMemory: "fake"}, sandbox.Spec{}, errdefs.Unavailable, "cgroup-memory"},
		{"cpu requested but missing", map[string]string{LayerCPU: "fake"}, sandbox.Spec{Limits: sandbox.Limits{CPU: 0.5}},
			errdefs.Unavailable, "cgroup-cpu"},
		{"require unenforceable", map[string]string{LayerMemory: "fake"},
			sandbox.Spec{Require: []sandbox.Feature{sandbox.FeatureMemory}}, errdefs.Unsupported, "memory-limit"},
		{"bad python", nil, sandbox.Spec{Python: "/nonexistent/python3"}, errdefs.Unavailable, "python"},
		{"bad bundle", nil, sandbox.Spec{BundleDir: "/nonexistent"}, errdefs.Invalid, "bundle"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newTestDriver(Options{}, testSeams{missing: tt.fake})
			if tt.spec.BundleDir == "" {
				tt.spec.BundleDir = dir
			}
			_, err := d.Open(context.Background(), tt.spec)
			if errdefs.KindOf(err) != tt.kind || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v (kind %s), want kind %s naming %q", err, errdefs.KindOf(err), tt.kind, tt.want)
			}
		})
	}
}

func TestBestEffortWarns(t *testing.T) {
	requireRoot(t)
	d := newTestDriver(Options{}, testSeams{missing: map[string]string{LayerLandlock: "fake: missing"}})
	sb, err := d.Open(context.Background(), sandbox.Spec{BundleDir: bundle(t, "        return {}"), BestEffort: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	res, err := sb.Call(context.Background(), sandbox.Request{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) == 0 || !strings.Contains(res.Warnings[0], "landlock") {
		t.Errorf("warnings %v", res.Warnings)
	}
	if errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatal(err)
	}
}

func TestProbe(t *testing.T) {
	c := New(Options{}).Probe(context.Background())
	for _, l := range c.Layers {
		t.Logf("%-18s %-5v %s", l.Name, l.Available, l.Detail)
	}
	t.Logf("available=%v enforces=%v reason=%s", c.Available, c.Enforces, c.Reason)
	if len(c.Layers) < 12 {
		t.Errorf("only %d layers reported", len(c.Layers))
	}
}
