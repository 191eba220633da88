package hostport

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

// HostPort is a parsed destination: Host is a lower-case ASCII name, "*."
// and a name, or an IP address in canonical form (without brackets); Port
// 0 means any port.
type HostPort struct {
	Host string
	Port int
}

// String is h in the syntax Parse reads: "host", "host:port",
// "*.domain:port", "[::1]", "[::1]:443".
func (h HostPort) String() string {
	if h.Port == 0 {
		if strings.Contains(h.Host, ":") {
			return "[" + h.Host + "]"
		}
		return h.Host
	}
	return net.JoinHostPort(h.Host, strconv.Itoa(h.Port))
}

// IsAddr reports whether h names an IP address rather than a name.
func (h HostPort) IsAddr() bool { return IsAddr(h.Host) }

// IsPattern reports whether h is a "*.domain" pattern.
func (h HostPort) IsPattern() bool { return strings.HasPrefix(h.Host, "*.") }

// IsAddr reports whether host (as Parse returns it) is an IP address.
func IsAddr(host string) bool {
	_, err := netip.ParseAddr(host)
	return err == nil
}

// Parse reads a destination or pattern: HOST, HOST:PORT, *.DOMAIN[:PORT],
// an IPv4 address with an optional port, or an IPv6 address bare, in
// brackets, or in brackets with a port.
func Parse(s string) (HostPort, error) {
	if err := syntax(s); err != nil {
		return HostPort{}, err
	}
	host, port, hasPort, bracketed, err := split(s)
	if err != nil {
		return HostPort{}, err
	}
	var hp HostPort
	if hasPort {
		if hp.Port, err = ParsePort(port); err != nil {
			return HostPort{}, err
		}
	}
	if hp.Host, err = parseHost(host, bracketed, true, false); err != nil {
		return HostPort{}, err
	}
	return hp, nil
}

// ParseHost reads a host name or an IP address (an IPv6 address bare or in
// brackets) without a port or a pattern, and returns it as Parse would. It
// is for names an HTTP client puts in Host, never resolved by skillbox, so
// it also accepts '_' in a label (docker-compose service names), which
// Parse refuses.
func ParseHost(s string) (string, error) {
	if err := syntax(s); err != nil {
		return "", err
	}
	host, bracketed := s, false
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		host, bracketed = s[1:len(s)-1], true
	} else if strings.Count(s, ":") == 1 || strings.ContainsAny(s, "[]") {
		return "", errors.New("want a host name or IP address, without a port")
	}
	return parseHost(host, bracketed, false, true)
}

// Name reads a host name alone (not an address, pattern or port) and
// returns it lower-cased, without a trailing dot, in ASCII.
func Name(h string) (string, error) { return name(h, false) }

func name(h string, underscore bool) (string, error) {
	orig := h
	bad := func(why string) error {
		if why == "" {
			return fmt.Errorf("bad host name %q", orig)
		}
		return fmt.Errorf("bad host name %q: %s", orig, why)
	}
	if strings.Contains(h, "*") {
		return "", bad(`a wildcard is only allowed as a leading "*." label`)
	}
	h = strings.TrimSuffix(h, ".")
	if h == "" {
		return "", bad("")
	}
	if !isASCII(h) {
		if !utf8.ValidString(h) {
			return "", bad("not UTF-8")
		}
		a, err := idna.Lookup.ToASCII(h)
		if err != nil {
			return "", bad(err.Error())
		}
		h = a
	}
	h = strings.ToLower(h)
	if len(h) > 253 {
		return "", bad("longer than 253 bytes")
	}
	labels := strings.Split(h, ".")
	for _, label := range labels {
		switch {
		case label == "":
			return "", bad("empty label")
		case len(label) > 63:
			return "", bad("a label is longer than 63 bytes")
		case label[0] == '-' || label[len(label)-1] == '-':
			return "", bad("a label starts or ends with '-'")
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c == '-' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' && underscore) {
				return "", bad("host names use letters, digits, '-' and '.'")
			}
		}
	}
	if allDigits(labels[len(labels)-1]) {
		return "", bad("numeric top-level label")
	}
	return h, nil
}

// ParsePort reads a port: 1-65535 in at most five decimal digits.
func ParsePort(s string) (int, error) {
	if s == "" || len(s) > 5 || !allDigits(s) {
		return 0, errors.New("port must be a number from 1 to 65535")
	}
	p, _ := strconv.Atoi(s)
	if p < 1 || p > 65535 {
		return 0, errors.New("port must be a number from 1 to 65535")
	}
	return p, nil
}

// syntax refuses what is plainly not a host: empty, a URL, a path, a user,
// white space or control characters.
func syntax(s string) error {
	switch {
	case s == "":
		return errors.New("empty host")
	case strings.Contains(s, "://"):
		return errors.New("give host or host:port, not a URL")
	case strings.ContainsAny(s, "/?#@\\") || strings.IndexFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0:
		return errors.New("give host or host:port, without a path, user or spaces")
	}
	return nil
}

// split cuts s into its host and port. A bracketed host is returned
// without its brackets.
func split(s string) (host, port string, hasPort, bracketed bool, err error) {
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", "", false, false, errors.New("unclosed [ in IPv6 address")
		}
		host, rest := s[1:end], s[end+1:]
		if rest == "" {
			return host, "", false, true, nil
		}
		if rest[0] != ':' {
			return "", "", false, false, errors.New("junk after ]")
		}
		return host, rest[1:], true, true, nil
	}
	switch strings.Count(s, ":") {
	case 0:
		return s, "", false, false, nil
	case 1:
		i := strings.IndexByte(s, ':')
		return s[:i], s[i+1:], true, false, nil
	}
	return s, "", false, false, nil // a bare IPv6 address, checked by parseHost
}

// parseHost checks a host as split from its port.
func parseHost(h string, bracketed, pattern, underscore bool) (string, error) {
	if strings.ContainsAny(h, "[]") {
		return "", fmt.Errorf("bad host %q", h)
	}
	if a, err := netip.ParseAddr(h); err == nil {
		if a.Zone() != "" {
			return "", fmt.Errorf("address %q: zones are not allowed", h)
		}
		if bracketed && !a.Is6() {
			return "", fmt.Errorf("brackets around %q, which is not an IPv6 address", h)
		}
		return a.String(), nil
	}
	if i := strings.IndexByte(h, '%'); i >= 0 {
		if _, err := netip.ParseAddr(h[:i]); err == nil {
			return "", fmt.Errorf("address %q: zones are not allowed", h)
		}
	}
	if strings.Contains(h, ":") {
		if bracketed {
			return "", fmt.Errorf("bad IPv6 address %q", h)
		}
		return "", fmt.Errorf("bad host %q: want HOST or HOST:PORT, and IPv6 addresses as [ADDR]:PORT", h)
	}
	if bracketed {
		return "", fmt.Errorf("brackets around %q, which is not an IPv6 address", h)
	}
	if pattern {
		if rest, ok := strings.CutPrefix(h, "*."); ok {
			n, err := Name(rest)
			if err != nil {
				return "", fmt.Errorf("%w (in pattern %q)", err, h)
			}
			return "*." + n, nil
		}
	}
	return name(h, underscore)
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
