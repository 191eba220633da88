package egress

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/skillbox-dev/skillbox/internal/hostport"
)

// Rule is one allowlist entry: a host name, "*.domain" (strict subdomains of
// domain), or an IP address literal, and a port; Port 0 means any port.
//
// The syntax is internal/hostport's, which policy.ParseHostPort reads too,
// so a sandbox.Spec's Network converts field by field.
type Rule struct {
	Host string
	Port int
}

// String is the rule in the syntax ParseRule reads ("host", "host:port",
// "*.domain:port", "[::1]:443").
func (r Rule) String() string { return hostport.HostPort{Host: r.Host, Port: r.Port}.String() }

// IsAddr reports whether the rule names an IP address rather than a name.
func (r Rule) IsAddr() bool { return hostport.IsAddr(r.Host) }

// ParseRule parses HOST, HOST:PORT, [IPv6]:PORT, a bare or bracketed IPv6
// address or *.DOMAIN[:PORT], in the one syntax of internal/hostport. Names
// are lower-cased, a trailing dot is dropped, and internationalised names
// are converted to their ASCII (punycode) form; addresses are written in
// canonical form.
func ParseRule(s string) (Rule, error) {
	hp, err := hostport.Parse(s)
	if err != nil {
		return Rule{}, err
	}
	return Rule{Host: hp.Host, Port: hp.Port}, nil
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
	n, err := hostport.Name(h)
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
		// The target is not quoted: it is a path and a query, which
		// audit records never hold.
		return target{}, "", errors.New("not an absolute URL: the request names no host (is the proxy used as a proxy?)")
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
	t.port, err = hostport.ParsePort(p)
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
