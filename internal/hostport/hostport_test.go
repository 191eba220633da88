package hostport

import (
	"net/netip"
	"strings"
	"testing"
)

var (
	label63 = strings.Repeat("a", 63)
	label64 = strings.Repeat("a", 64)
	// name253 is four labels of 63 and one of 1: 4*64 - 1 + 2 = 257; trim
	// to 253 with labels 63+1+63+1+63+1+61.
	name253 = label63 + "." + label63 + "." + label63 + "." + strings.Repeat("b", 61)
	name254 = label63 + "." + label63 + "." + label63 + "." + strings.Repeat("b", 62)
)

func TestParse(t *testing.T) {
	if len(name253) != 253 || len(name254) != 254 {
		t.Fatalf("fixture lengths %d, %d", len(name253), len(name254))
	}
	tests := []struct {
		name string
		in   string
		want HostPort
		err  string // a substring of the error; "" = accepted
	}{
		// names
		{"name", "api.example.com", HostPort{Host: "api.example.com"}, ""},
		{"single label", "localhost", HostPort{Host: "localhost"}, ""},
		{"case folded", "API.Example.COM", HostPort{Host: "api.example.com"}, ""},
		{"trailing dot dropped", "example.com.", HostPort{Host: "example.com"}, ""},
		{"two trailing dots", "example.com..", HostPort{}, "empty label"},
		{"lone dot", ".", HostPort{}, "bad host name"},
		{"leading dot", ".example.com", HostPort{}, "empty label"},
		{"empty label", "a..b", HostPort{}, "empty label"},
		{"digits and hyphen", "a-1.example.com", HostPort{Host: "a-1.example.com"}, ""},
		{"leading hyphen", "-a.example.com", HostPort{}, "'-'"},
		{"trailing hyphen", "a-.example.com", HostPort{}, "'-'"},
		{"underscore", "a_b.example.com", HostPort{}, "letters, digits"},
		{"label of 63", label63 + ".com", HostPort{Host: label63 + ".com"}, ""},
		{"label of 64", label64 + ".com", HostPort{}, "63"},
		{"name of 253", name253, HostPort{Host: name253}, ""},
		{"name of 254", name254, HostPort{}, "253"},
		{"name of 253 and a dot", name253 + ".", HostPort{Host: name253}, ""},
		{"numeric top label", "127.1", HostPort{}, "numeric top-level label"},
		{"integer address", "2130706433", HostPort{}, "numeric top-level label"},
		{"leading-zero dotted quad", "010.0.0.1", HostPort{}, "numeric top-level label"},
		{"five numbers", "1.2.3.4.5", HostPort{}, "numeric top-level label"},
		{"digit top label with letters", "example.123abc", HostPort{Host: "example.123abc"}, ""},
		// internationalised names
		{"IDN to punycode", "bücher.example", HostPort{Host: "xn--bcher-kva.example"}, ""},
		{"IDN upper case", "BÜCHER.example", HostPort{Host: "xn--bcher-kva.example"}, ""},
		{"punycode kept", "XN--BCHER-KVA.example", HostPort{Host: "xn--bcher-kva.example"}, ""},
		{"IDN pattern", "*.bücher.example:443", HostPort{Host: "*.xn--bcher-kva.example", Port: 443}, ""},
		{"IDN refused by IDNA", "a\u200db.example", HostPort{}, "bad host name"},
		{"invalid UTF-8", "a\xffb.example", HostPort{}, "bad host name"},
		{"fullwidth dot mapped", "bücher\u3002example", HostPort{Host: "xn--bcher-kva.example"}, ""},
		// ports
		{"port", "example.com:8080", HostPort{Host: "example.com", Port: 8080}, ""},
		{"port 1", "example.com:1", HostPort{Host: "example.com", Port: 1}, ""},
		{"port 65535", "example.com:65535", HostPort{Host: "example.com", Port: 65535}, ""},
		{"port 0", "example.com:0", HostPort{}, "1 to 65535"},
		{"port 65536", "example.com:65536", HostPort{}, "1 to 65535"},
		{"port with sign", "example.com:+80", HostPort{}, "1 to 65535"},
		{"port with leading zero", "example.com:0080", HostPort{Host: "example.com", Port: 80}, ""},
		{"port of six digits", "example.com:000080", HostPort{}, "1 to 65535"},
		{"empty port", "example.com:", HostPort{}, "1 to 65535"},
		{"named port", "example.com:https", HostPort{}, "1 to 65535"},
		{"two ports", "example.com:80:90", HostPort{}, "want HOST or HOST:PORT"},
		// patterns
		{"pattern", "*.example.com", HostPort{Host: "*.example.com"}, ""},
		{"pattern with port", "*.Example.com.:443", HostPort{Host: "*.example.com", Port: 443}, ""},
		{"pattern of a top-level domain", "*.com", HostPort{Host: "*.com"}, ""},
		{"bare star", "*", HostPort{}, "wildcard"},
		{"star dot", "*.", HostPort{}, "bad host name"},
		{"inner star", "a.*.example.com", HostPort{}, "wildcard"},
		{"two stars", "*.*.example.com", HostPort{}, "wildcard"},
		{"star in a label", "*example.com", HostPort{}, "wildcard"},
		{"pattern of an address", "*.10.0.0.1", HostPort{}, "numeric top-level label"},
		{"pattern with bad name", "*.a_b.com", HostPort{}, "letters, digits"},
		// addresses
		{"IPv4", "10.0.0.1", HostPort{Host: "10.0.0.1"}, ""},
		{"IPv4 and port", "127.0.0.1:8080", HostPort{Host: "127.0.0.1", Port: 8080}, ""},
		{"IPv6 bare", "::1", HostPort{Host: "::1"}, ""},
		{"IPv6 bracketed", "[2001:DB8::1]", HostPort{Host: "2001:db8::1"}, ""},
		{"IPv6 and port", "[::1]:80", HostPort{Host: "::1", Port: 80}, ""},
		{"IPv6 canonical", "[2001:db8:0:0::1]:443", HostPort{Host: "2001:db8::1", Port: 443}, ""},
		{"IPv4-mapped kept", "::ffff:1.2.3.4", HostPort{Host: "::ffff:1.2.3.4"}, ""},
		{"IPv6 and empty port", "[::1]:", HostPort{}, "1 to 65535"},
		{"IPv6 zone", "fe80::1%eth0", HostPort{}, "zones"},
		{"IPv6 zone bracketed", "[fe80::1%25eth0]:80", HostPort{}, "zones"},
		{"IPv4 zone", "10.0.0.1%eth0", HostPort{}, "zones"},
		{"unclosed bracket", "[::1", HostPort{}, "unclosed"},
		{"junk after bracket", "[::1]x", HostPort{}, "junk"},
		{"brackets around a name", "[example.com]:80", HostPort{}, "not an IPv6 address"},
		{"brackets around IPv4", "[10.0.0.1]:80", HostPort{}, "not an IPv6 address"},
		{"empty brackets", "[]:80", HostPort{}, "not an IPv6 address"},
		{"bad IPv6", "[::g]:80", HostPort{}, "bad IPv6 address"},
		{"colons in a name", "a:b:c", HostPort{}, "want HOST or HOST:PORT"},
		{"stray bracket", "a]b:80", HostPort{}, "bad host"},
		// not hosts at all
		{"empty", "", HostPort{}, "empty host"},
		{"URL", "https://example.com", HostPort{}, "not a URL"},
		{"path", "example.com/x", HostPort{}, "without a path"},
		{"query", "example.com?x", HostPort{}, "without a path"},
		{"user", "user@example.com", HostPort{}, "without a path, user"},
		{"space", "exa mple.com", HostPort{}, "spaces"},
		{"tab", "example.com\t", HostPort{}, "spaces"},
		{"newline", "example.com\n", HostPort{}, "spaces"},
		{"NUL", "example.com\x00.evil", HostPort{}, "spaces"},
		{"backslash", "a.test\\@evil.test", HostPort{}, "without a path"},
		{"percent", "a%2e.test", HostPort{}, "letters, digits"},
		{"percent in an address", "[fe80::g%1]", HostPort{}, "bad IPv6 address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if tt.err == "" {
				if err != nil || got != tt.want {
					t.Fatalf("Parse(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
				}
				again, err := Parse(got.String())
				if err != nil || again != got {
					t.Errorf("Parse(%q) = %+v, which writes as %q and reads back as %+v, %v", tt.in, got, got.String(), again, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("Parse(%q) = %+v, %v; want an error containing %q", tt.in, got, err, tt.err)
			}
		})
	}
}

func TestParseHost(t *testing.T) {
	for in, want := range map[string]string{
		"Agent.Internal": "agent.internal",
		"agent.test.":    "agent.test",
		"bücher.example": "xn--bcher-kva.example",
		"127.0.0.2":      "127.0.0.2",
		"::1":            "::1",
		"[::1]":          "::1",
		"[2001:DB8::1]":  "2001:db8::1",
		"My_Agent":       "my_agent",
	} {
		if got, err := ParseHost(in); err != nil || got != want {
			t.Errorf("ParseHost(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "agent.test:8080", "[::1]:80", "http://agent.test", "*", "*.agent.test", "a b",
		"a..test", "-a.test", "127.1", "fe80::1%eth0", "[agent.test]", "[10.0.0.1]", "agent.test]", "[::1"} {
		if got, err := ParseHost(in); err == nil {
			t.Errorf("ParseHost(%q) = %q; want an error", in, got)
		}
	}
}

func TestName(t *testing.T) {
	if got, err := Name("API.Example.COM."); err != nil || got != "api.example.com" {
		t.Errorf("Name = %q, %v", got, err)
	}
	for _, in := range []string{"", "*.example.com", "10.0.0.1", "example.com:80", "[::1]", "a_b"} {
		if got, err := Name(in); err == nil {
			t.Errorf("Name(%q) = %q; want an error", in, got)
		}
	}
}

func TestHostPortString(t *testing.T) {
	for hp, want := range map[HostPort]string{
		{Host: "a.test"}:               "a.test",
		{Host: "a.test", Port: 443}:    "a.test:443",
		{Host: "*.a.test", Port: 8080}: "*.a.test:8080",
		{Host: "::1"}:                  "[::1]",
		{Host: "::1", Port: 80}:        "[::1]:80",
		{Host: "10.0.0.1", Port: 80}:   "10.0.0.1:80",
	} {
		if got := hp.String(); got != want {
			t.Errorf("%+v.String() = %q; want %q", hp, got, want)
		}
	}
	if !(HostPort{Host: "::1"}).IsAddr() || (HostPort{Host: "*.a.test"}).IsAddr() || !(HostPort{Host: "*.a.test"}).IsPattern() {
		t.Error("IsAddr/IsPattern")
	}
}

// FuzzParse checks that whatever Parse accepts is canonical: it reads back
// as itself, names are lower-case ASCII without a trailing dot, addresses
// are canonical and zone-free.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"api.example.com", "API.example.com.:443", "*.example.com:8080", "[::1]:80", "::1",
		"127.0.0.1", "bücher.example", "xn--bcher-kva.example", "a..b", "[a.test]:1", "*.", "fe80::1%eth0", "127.1", "a:+80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		hp, err := Parse(s)
		if err != nil {
			return
		}
		again, err := Parse(hp.String())
		if err != nil || again != hp {
			t.Fatalf("Parse(%q) = %+v; reparsing %q gives %+v, %v", s, hp, hp.String(), again, err)
		}
		if hp.Port < 0 || hp.Port > 65535 {
			t.Fatalf("port %d", hp.Port)
		}
		if a, err := netip.ParseAddr(hp.Host); err == nil {
			if a.Zone() != "" || a.String() != hp.Host {
				t.Fatalf("address %q", hp.Host)
			}
			return
		}
		name := strings.TrimPrefix(hp.Host, "*.")
		if n, err := Name(name); err != nil || n != name {
			t.Fatalf("name %q from %q is not canonical (%q, %v)", name, s, n, err)
		}
	})
}
