package egress

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Rule is one allowlist entry: a host name, "*.domain" (strict subdomains of
// domain), or an IP address literal, and a port; Port 0 means any port.
//
// The syntax is the one of policy.ParseHostPort and sandbox.HostPort, so a
// sandbox.Spec's Network converts field by field.
type Rule struct {
	Host string
	Port int
}

// String is the rule in the syntax ParseRule reads ("host", "host:port",
// "*.domain:port", "[::1]:443").
func (r Rule) String() string {
	if r.Port == 0 {
		if strings.Contains(r.Host, ":") {
			return "[" + r.Host + "]"
		}
		return r.Host
	}
	return net.JoinHostPort(r.Host, strconv.Itoa(r.Port))
}

// IsAddr reports whether the rule names an IP address rather than a name.
func (r Rule) IsAddr() bool {
	_, err := netip.ParseAddr(r.Host)
	return err == nil
}

// ParseRule parses HOST, HOST:PORT, [IPv6]:PORT, a bare IPv6 address or
// *.DOMAIN[:PORT]. Names are lower-cased, a trailing dot is dropped, and
// internationalised names are converted to their ASCII (punycode) form;
// addresses are written in canonical form.
func ParseRule(s string) (Rule, error) {
	if s == "" {
		return Rule{}, errors.New("empty host")
	}
	host, portStr := s, ""
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, portStr = h, p
		if strings.HasPrefix(s, "[") && !strings.Contains(h, ":") {
			return Rule{}, fmt.Errorf("brackets around %q, which is not an IPv6 address", h)
		}
	} else if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		host = s[1 : len(s)-1]
	} else if strings.Count(s, ":") > 1 {
		host = s // bare IPv6 address; checked below
	} else if strings.Contains(s, ":") {
		return Rule{}, errors.New("want HOST or HOST:PORT")
	}
	r := Rule{}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return Rule{}, fmt.Errorf("address %q: zones are not allowed", host)
		}
		r.Host = a.String()
	} else if strings.Contains(host, ":") {
		return Rule{}, fmt.Errorf("bad address %q", host)
	} else {
		wild := false
		if rest, ok := strings.CutPrefix(host, "*."); ok {
			wild, host = true, rest
		}
		name, err := normalizeName(host)
		if err != nil {
			return Rule{}, err
		}
		if wild {
			name = "*." + name
		}
		r.Host = name
	}
	if portStr != "" {
		p, err := parsePort(portStr)
		if err != nil {
			return Rule{}, err
		}
		r.Port = p
	}
	return r, nil
}

// parsePort accepts 1-65535 written in decimal digits only.
func parsePort(s string) (int, error) {
	if s == "" || len(s) > 5 {
		return 0, fmt.Errorf("port %q is not in 1-65535", s)
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("port %q is not in 1-65535", s)
		}
	}
	p, _ := strconv.Atoi(s)
	if p < 1 || p > 65535 {
		return 0, fmt.Errorf("port %q is not in 1-65535", s)
	}
	return p, nil
}

// normalizeName lower-cases a host name, drops one trailing dot, converts an
// internationalised name to ASCII and checks LDH syntax (letters, digits,
// hyphens; labels of 1-63 bytes; 253 bytes in all). A name whose last label is
// all digits is refused: resolvers and clients disagree on whether "127.1" or
// "2130706433" are addresses.
func normalizeName(h string) (string, error) {
	orig := h
	h = strings.TrimSuffix(h, ".")
	if h == "" {
		return "", fmt.Errorf("bad host name %q", orig)
	}
	if !isASCII(h) {
		if !utf8.ValidString(h) {
			return "", fmt.Errorf("bad host name %q", orig)
		}
		a, err := idna.Lookup.ToASCII(h)
		if err != nil {
			return "", fmt.Errorf("bad host name %q: %v", orig, err)
		}
		h = a
	}
	h = strings.ToLower(h)
	if len(h) > 253 {
		return "", fmt.Errorf("bad host name %q", orig)
	}
	labels := strings.Split(h, ".")
	for _, label := range labels {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "", fmt.Errorf("bad host name %q", orig)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c == '-' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
				return "", fmt.Errorf("bad host name %q", orig)
			}
		}
	}
	if allDigits(labels[len(labels)-1]) {
		return "", fmt.Errorf("bad host name %q: numeric top-level label", orig)
	}
	return h, nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// target is a normalised destination: a name (addr invalid) or an address
// literal (addr valid, name empty), and a port.
type target struct {
	name string
	addr netip.Addr
	port int
}

func (t target) host() string {
	if t.addr.IsValid() {
		return t.addr.String()
	}
	return t.name
}

func (t target) String() string {
	return net.JoinHostPort(t.host(), strconv.Itoa(t.port))
}

// parseHost normalises the host of a request (no port): an IP literal (with or
// without brackets; IPv4-mapped IPv6 is unmapped) or a name.
func parseHost(h string) (target, error) {
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
		a, err := netip.ParseAddr(h)
		if err != nil || !a.Is6() {
			return target{}, fmt.Errorf("bad address %q", h)
		}
	}
	if a, err := netip.ParseAddr(h); err == nil {
		if a.Zone() != "" {
			return target{}, fmt.Errorf("address %q: zones are not allowed", h)
		}
		return target{addr: a.Unmap()}, nil
	}
	if strings.ContainsAny(h, ":[]") {
		return target{}, fmt.Errorf("bad host %q", h)
	}
	n, err := normalizeName(h)
	if err != nil {
		return target{}, err
	}
	return target{name: n}, nil
}

// ParseTarget parses the request target of a proxy request as the proxy
// sees it: for CONNECT the authority form "host:port" (the port is
// required), otherwise the absolute form "http://host[:port]/path" or
// "https://...". It returns the URL scheme ("" for CONNECT), the normalised
// host (a lower-case ASCII name or a canonical address) and the port (the
// scheme's default when absent).
func ParseTarget(method, requestURI string) (scheme, host string, port int, err error) {
	t, scheme, err := parseTarget(method, requestURI)
	if err != nil {
		return "", "", 0, err
	}
	return scheme, t.host(), t.port, nil
}

func parseTarget(method, requestURI string) (target, string, error) {
	if method == "CONNECT" {
		h, p, err := net.SplitHostPort(requestURI)
		if err != nil {
			return target{}, "", fmt.Errorf("CONNECT wants host:port, got %q", requestURI)
		}
		if strings.HasPrefix(requestURI, "[") && !strings.Contains(h, ":") {
			return target{}, "", fmt.Errorf("bad authority %q", requestURI)
		}
		t, err := parseAuthority(h, p, true)
		return t, "", err
	}
	scheme, rest, ok := strings.Cut(requestURI, "://")
	if !ok {
		return target{}, "", fmt.Errorf("not an absolute URL: %q (is the proxy used as a proxy?)", requestURI)
	}
	scheme = strings.ToLower(scheme)
	if scheme != "http" && scheme != "https" {
		return target{}, "", fmt.Errorf("scheme %q is not proxied (only http and https)", scheme)
	}
	auth := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		auth = rest[:i]
	}
	if strings.Contains(auth, "@") {
		return target{}, "", errors.New("credentials in the URL are not accepted")
	}
	h, p := auth, ""
	if hh, pp, err := net.SplitHostPort(auth); err == nil {
		h, p = hh, pp
		if strings.HasPrefix(auth, "[") && !strings.Contains(h, ":") {
			return target{}, "", fmt.Errorf("bad authority %q", auth)
		}
	} else if strings.HasSuffix(auth, "]") || !strings.Contains(auth, ":") {
		h = auth
	} else {
		return target{}, "", fmt.Errorf("bad authority %q", auth)
	}
	t, err := parseAuthority(h, p, false)
	if err != nil {
		return target{}, "", err
	}
	if t.port == 0 {
		t.port = 80
		if scheme == "https" {
			t.port = 443
		}
	}
	return t, scheme, nil
}

// parseAuthority checks host and port as split by net.SplitHostPort (which
// strips brackets) or as written (brackets kept).
func parseAuthority(h, p string, needPort bool) (target, error) {
	if h == "" {
		return target{}, errors.New("empty host")
	}
	if strings.Contains(h, "%") {
		return target{}, fmt.Errorf("bad host %q", h)
	}
	t, err := parseHost(h)
	if err != nil {
		return target{}, err
	}
	if p == "" {
		if needPort {
			return target{}, errors.New("missing port")
		}
		return t, nil
	}
	t.port, err = parsePort(p)
	return t, err
}

// matches reports whether r allows t. Name rules never match address
// literals and address rules never match names; "*.d" matches strict
// subdomains of d.
func (r Rule) matches(t target) bool {
	if r.Port != 0 && r.Port != t.port {
		return false
	}
	if t.addr.IsValid() {
		a, err := netip.ParseAddr(r.Host)
		return err == nil && a.Unmap() == t.addr
	}
	if suffix, ok := strings.CutPrefix(r.Host, "*."); ok {
		return strings.HasSuffix(t.name, "."+suffix)
	}
	return r.Host == t.name
}

// coversAddr reports whether r is an address rule granting a, port.
func (r Rule) coversAddr(a netip.Addr, port int) bool {
	return r.matches(target{addr: a.Unmap(), port: port})
}
