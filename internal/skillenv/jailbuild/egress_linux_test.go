package jailbuild

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

type fakeResolver map[string][]netip.Addr

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := f[host]; ok {
		return a, nil
	}
	return nil, fmt.Errorf("no such host %s", host)
}

// egressFor grants exactly the sources' hosts and ports; a name that
// resolves only to loopback or private addresses (an index the operator
// configured on this machine or network) is pinned to them, a public or
// mixed one is left to the proxy, which refuses private answers.
func TestEgressFor(t *testing.T) {
	res := fakeResolver{
		"localhost":      {netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")},
		"pypi.internal":  {netip.MustParseAddr("10.1.2.3")},
		"pypi.org":       {netip.MustParseAddr("151.101.0.223")},
		"rebind.example": {netip.MustParseAddr("151.101.0.1"), netip.MustParseAddr("127.0.0.1")},
	}
	cfg, err := egressFor(context.Background(), res, []string{
		"http://localhost:8080/simple", "https://pypi.internal/simple", "https://pypi.org/simple",
		"https://rebind.example/simple", "http://127.0.0.1:9000/simple", "http://[::1]:9001/links",
	}, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var allow []string
	for _, r := range cfg.Allow {
		allow = append(allow, r.String())
	}
	want := []string{"localhost:8080", "pypi.internal:443", "pypi.org:443", "rebind.example:443", "127.0.0.1:9000", "[::1]:9001"}
	if !slices.Equal(allow, want) {
		t.Errorf("allow %q, want %q", allow, want)
	}
	if len(cfg.Resolve) != 2 || len(cfg.Resolve["localhost"]) != 2 || cfg.Resolve["pypi.internal"][0].String() != "10.1.2.3" {
		t.Errorf("pinned %v, want localhost and pypi.internal only", cfg.Resolve)
	}
	if none, err := egressFor(context.Background(), res, nil, 1<<20); none != nil || err != nil {
		t.Errorf("no sources: %v %v, want no network", none, err)
	}
	for _, bad := range []string{"ftp://x/simple", "file:///srv/wheels", "http:///simple"} {
		if _, err := egressFor(context.Background(), res, []string{bad}, 1<<20); err == nil || !strings.Contains(err.Error(), "http(s)") {
			t.Errorf("%s: err = %v", bad, err)
		}
	}
}
