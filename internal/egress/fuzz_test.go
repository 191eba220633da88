package egress

import (
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/internal/hostport"
)

func FuzzParseRule(f *testing.F) {
	for _, s := range []string{"api.example.com", "API.example.com.:443", "*.example.com", "*.example.com:8080",
		"[::1]:80", "::1", "127.0.0.1", "bücher.example", "xn--bcher-kva.example", "a..b", "[a.test]:1", "*.", "fe80::1%eth0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRule(s)
		if err != nil {
			return
		}
		if err := checkRule(r); err != nil {
			t.Fatalf("ParseRule(%q) = %+v, not canonical: %v", s, r, err)
		}
		again, err := ParseRule(r.String())
		if err != nil || again != r {
			t.Fatalf("ParseRule(%q) = %+v; reparsing %q gives %+v, %v", s, r, r.String(), again, err)
		}
		if r.Port < 0 || r.Port > 65535 {
			t.Fatalf("port %d", r.Port)
		}
		if a, err := netip.ParseAddr(r.Host); err == nil {
			if a.Zone() != "" || a.String() != r.Host {
				t.Fatalf("address rule %q", r.Host)
			}
			return
		}
		name := strings.TrimPrefix(r.Host, "*.")
		if strings.ContainsAny(name, "*:/@[]% \t\r\n\\") || strings.ToLower(name) != name || name == "" {
			t.Fatalf("name rule %q from %q", r.Host, s)
		}
	})
}

func FuzzParseTarget(f *testing.F) {
	for _, s := range [][2]string{
		{"CONNECT", "api.test:443"}, {"CONNECT", "[::1]:8443"}, {"GET", "http://api.test/x?y=1"},
		{"GET", "https://API.test:8443"}, {"POST", "http://[::ffff:127.0.0.1]:81/"}, {"GET", "http://user@evil.test/"},
		{"GET", "http://a.test\\@evil.test/"}, {"GET", "http://a.test%00.evil/"}, {"GET", "http://127.1/"},
		{"GET", "http://[a.test]/"}, {"GET", "http://bücher.example/"}, {"CONNECT", "a.test:0443"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, method, uri string) {
		tg, scheme, err := parseTarget(method, uri)
		if err != nil {
			return
		}
		if tg.port < 1 || tg.port > 65535 {
			t.Fatalf("port %d", tg.port)
		}
		if tg.addr.IsValid() == (tg.name != "") {
			t.Fatalf("target %+v is neither a name nor an address", tg)
		}
		if tg.addr.IsValid() && (tg.addr.Zone() != "" || tg.addr.Is4In6()) {
			t.Fatalf("address %v not normalised", tg.addr)
		}
		if tg.name != "" {
			if n, err := hostport.Name(tg.name); err != nil || n != tg.name {
				t.Fatalf("name %q not normalised (%v)", tg.name, err)
			}
		}
		// The target must survive a round trip through the URL the proxy
		// builds for the upstream request.
		if method == "CONNECT" {
			if scheme != "" {
				t.Fatalf("scheme %q for CONNECT", scheme)
			}
			return
		}
		if scheme != "http" && scheme != "https" {
			t.Fatalf("scheme %q", scheme)
		}
		u, err := url.Parse(scheme + "://" + urlHost(tg, scheme) + "/")
		if err != nil {
			t.Fatalf("built URL does not parse: %v", err)
		}
		back, err := parseHost(u.Hostname())
		if err != nil || back.host() != tg.host() {
			t.Fatalf("built URL host %q, want %q (%v)", u.Hostname(), tg.host(), err)
		}
		// Where net/url also parses the request, both must agree on the host.
		if pu, err := url.ParseRequestURI(uri); err == nil && pu.Host != "" {
			if h, err := parseHost(strings.TrimSuffix(pu.Hostname(), ".")); err == nil && h.host() != tg.host() {
				t.Fatalf("net/url reads host %q, egress %q", h.host(), tg.host())
			}
		}
	})
}
