package egress

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/skillbox-dev/skillbox/audit"
	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/hostport"
)

// Defaults applied by New when a Config field is zero.
const (
	DefaultMaxConns    = 256
	DefaultMaxBytes    = 256 << 20
	DefaultDialTimeout = 10 * time.Second
	DefaultMaxBodyScan = 64 << 10
	// DefaultMaxClientConns is the default of Config.MaxClientConns.
	DefaultMaxClientConns = 256
	// DefaultMaxBuffer is the default of Config.MaxBuffer.
	DefaultMaxBuffer = 16 << 20
	// DefaultHeaderTimeout, DefaultIdleTimeout and DefaultStallTimeout are
	// the defaults of the Config fields of those names.
	DefaultHeaderTimeout = 30 * time.Second
	DefaultIdleTimeout   = 90 * time.Second
	DefaultStallTimeout  = 60 * time.Second
	// DefaultMaxEvents is the default of Config.MaxEvents.
	DefaultMaxEvents = 10000
	// DefaultCAFile is where the sandbox is expected to see CABundle: the
	// path Debian's OpenSSL, Python, requests (through certifi's
	// replacements) and curl read, and crypto/x509's first.
	DefaultCAFile = "/etc/ssl/certs/ca-certificates.crt"
	// PlaceholderPrefix starts every placeholder NewPlaceholder makes.
	PlaceholderPrefix = "skillbox-secret-"
)

// Resolver resolves host names; *net.Resolver implements it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Config is one proxy's grant. It is normally built from a sandbox.Spec
// (internal/jail.EgressConfig) and serves the calls of one sandbox.
type Config struct {
	// Allow lists the destinations a request may name. Empty allows nothing.
	Allow []Rule
	// Resolve maps host names to fixed addresses (--egress-resolve
	// HOST=IP). A mapped name is never looked up, and the mapping is an
	// explicit grant of those addresses for that name, even in ranges that
	// are otherwise refused (loopback, private, ...). The name itself must
	// still be allowed by Allow.
	Resolve map[string][]netip.Addr
	// Resolver looks up names not in Resolve; nil means net.DefaultResolver.
	Resolver Resolver
	// MaxConns bounds the upstream connections the proxy opens over its
	// life (or since ResetBudget). 0 means DefaultMaxConns.
	MaxConns int
	// MaxClientConns bounds the client connections served at once; one
	// more is answered 429 and closed, and audited as a limit. 0 means
	// DefaultMaxClientConns.
	MaxClientConns int
	// MaxBuffer bounds the bytes the proxy holds at once on behalf of its
	// clients: request bodies read whole (up to MaxBodyScan each), the
	// windows of streamed substitution and redaction, and decompression
	// windows. A request that would go over it fails (429), audited as a
	// limit. 0 means DefaultMaxBuffer.
	MaxBuffer int64
	// HeaderTimeout bounds reading a request's header from a client.
	// 0 means DefaultHeaderTimeout.
	HeaderTimeout time.Duration
	// IdleTimeout closes a kept-alive client connection that sends no new
	// request, and a tunnel in which no byte moved either way, for this
	// long. 0 means DefaultIdleTimeout.
	IdleTimeout time.Duration
	// StallTimeout cuts a client connection when reading its request body,
	// or writing a response to it, makes no progress for this long. It
	// bounds no whole transfer: a slow upload or download that keeps
	// moving is never cut. 0 means DefaultStallTimeout.
	StallTimeout time.Duration
	// MaxEvents bounds the requests and tunnels (each one audited
	// decision) the proxy serves over its life (or since ResetBudget);
	// past it, each is answered 429 without an Event of its own, after one
	// limit Event that says so: a sandbox's requests, refused or not,
	// cannot write the audit log without end. 0 means DefaultMaxEvents.
	MaxEvents int
	// MaxBytes bounds the bytes sent and received upstream (both
	// directions, as on the wire, TLS included) over the proxy's life.
	// 0 means DefaultMaxBytes.
	MaxBytes int64
	// DialTimeout bounds resolving and connecting to one destination.
	// 0 means DefaultDialTimeout.
	DialTimeout time.Duration
	// MaxBodyScan bounds the request bodies (JSON, form, text) read whole
	// before they are forwarded: a placeholder in them is refused or
	// substituted before anything reaches the host, and the body keeps an
	// exact Content-Length. Larger bodies are substituted as they stream
	// (sent chunked when a value's encoding differs in length from its
	// placeholder); a placeholder that may not go to the host cuts the
	// request there. 0 means DefaultMaxBodyScan.
	MaxBodyScan int64
	// Secrets are substituted into requests to their hosts.
	Secrets []Secret
	// Audit receives one Event per decision. It is called from the proxy's
	// connection goroutines, concurrently, and must not block for long.
	Audit func(Event)
	// UpstreamRootCAs verifies the upstream servers of intercepted HTTPS
	// requests (and of absolute https:// URLs); nil means the host's roots.
	UpstreamRootCAs *x509.CertPool
	// CACerts are PEM certificates the operator trusts beyond the host's
	// roots (the policy file's ca_file, --ca-file): the sandbox trusts
	// them (CABundle) and so does the proxy for the upstreams it verifies.
	// Validate requires one certificate or more when it is set.
	CACerts []byte
	// CAFile is the path at which the sandbox sees CABundle(); Env points
	// SSL_CERT_FILE and friends at it. Empty means DefaultCAFile.
	CAFile string
	// CAValidity is the lifetime of the ephemeral CA; 0 means 24 hours.
	CAValidity time.Duration
}

// Secret is a value that never enters the sandbox. The sandbox is given
// Placeholder instead (as the value of the environment variable or config
// key Name); the proxy puts Value in its place in requests to Hosts only.
type Secret struct {
	// Name names the secret in audit events and messages (never the value).
	Name string
	// Placeholder is what the sandbox sees; NewPlaceholder makes one.
	Placeholder string
	// Value is the real secret. It may not contain control characters.
	Value string
	// Hosts are the destinations the value may be sent to (Rule syntax).
	Hosts []Rule
	// AllowHTTP also substitutes into plain-HTTP requests. By default the
	// value is only sent over TLS, and a placeholder in a plain-HTTP request
	// to a bound host is refused.
	AllowHTTP bool
}

// NewPlaceholder returns a fresh random placeholder:
// "skillbox-secret-" and 32 hex digits.
func NewPlaceholder() string {
	var b [16]byte
	rand.Read(b[:])
	return PlaceholderPrefix + hex.EncodeToString(b[:])
}

// Decisions in Event.Decision.
const (
	DecisionAllow = "allow" // the exchange was allowed and took place
	DecisionDeny  = "deny"  // refused by policy (allowlist, address range, secret binding)
	DecisionLimit = "limit" // refused or cut short by MaxConns, MaxBytes, MaxClientConns or MaxBuffer
	DecisionError = "error" // allowed, but failed upstream (DNS, connect, TLS)
)

// Event is one audited decision: the egress part of an audit record
// (audit.Egress, which the proxy fills but for OutsideCall and EnvBuild,
// the caller's to say) and when it was made. An allowed exchange is
// reported once it is over, with its byte counts; a refusal is reported
// at once.
type Event struct {
	Time time.Time `json:"time"`
	audit.Egress
}

// Validate checks c and returns an errdefs.Invalid error naming the first
// problem.
func (c *Config) Validate() error {
	bad := func(format string, args ...any) error {
		return errdefs.New(errdefs.Invalid, "egress: "+format, args...)
	}
	for _, r := range c.Allow {
		if err := checkRule(r); err != nil {
			return bad("allow %q: %v", r.String(), err)
		}
	}
	if len(c.CACerts) > 0 {
		if _, err := ParseCAs("CACerts", c.CACerts); err != nil {
			return bad("%v", err)
		}
	}
	for name, addrs := range c.Resolve {
		n, err := hostport.Name(name)
		if err != nil || n != name {
			return bad("resolve %q: want a lower-case host name", name)
		}
		if len(addrs) == 0 {
			return bad("resolve %q: no addresses", name)
		}
		for _, a := range addrs {
			if !a.IsValid() || a.Zone() != "" || a.IsUnspecified() || a.IsMulticast() {
				return bad("resolve %q: bad address %q", name, a)
			}
		}
	}
	if c.MaxConns < 0 || c.MaxEvents < 0 || c.MaxBytes < 0 || c.DialTimeout < 0 || c.MaxBodyScan < 0 || c.CAValidity < 0 ||
		c.MaxClientConns < 0 || c.MaxBuffer < 0 || c.HeaderTimeout < 0 || c.IdleTimeout < 0 || c.StallTimeout < 0 {
		return bad("limits must not be negative")
	}
	names := map[string]bool{}
	for i, s := range c.Secrets {
		if s.Name == "" {
			return bad("secret %d: no name", i)
		}
		if names[s.Name] {
			return bad("secret %s: listed twice", s.Name)
		}
		names[s.Name] = true
		if len(s.Placeholder) < 16 {
			return bad("secret %s: placeholder shorter than 16 bytes (use NewPlaceholder)", s.Name)
		}
		if s.Value == "" {
			return bad("secret %s: empty value", s.Name)
		}
		for _, r := range s.Value + s.Placeholder {
			if r < 0x20 || r == 0x7f {
				return bad("secret %s: value or placeholder contains a control character", s.Name)
			}
		}
		if strings.Contains(s.Value, s.Placeholder) || strings.Contains(s.Placeholder, s.Value) {
			return bad("secret %s: value and placeholder overlap", s.Name)
		}
		if len(s.Hosts) == 0 {
			return bad("secret %s: bound to no host", s.Name)
		}
		for _, r := range s.Hosts {
			if err := checkRule(r); err != nil {
				return bad("secret %s: host %q: %v", s.Name, r.String(), err)
			}
		}
		for _, o := range c.Secrets[:i] {
			if strings.Contains(o.Placeholder, s.Placeholder) || strings.Contains(s.Placeholder, o.Placeholder) {
				return bad("secrets %s and %s: placeholders overlap", o.Name, s.Name)
			}
		}
	}
	return nil
}

// checkRule reports whether r is in the canonical form ParseRule returns.
func checkRule(r Rule) error {
	if r.Port < 0 || r.Port > 65535 {
		return fmt.Errorf("port %d is not in 1-65535", r.Port)
	}
	p, err := ParseRule(r.String())
	if err != nil {
		return err
	}
	if p != r {
		return fmt.Errorf("not in canonical form (want %q)", p.String())
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Resolver == nil {
		c.Resolver = net.DefaultResolver
	}
	if c.MaxConns == 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.MaxBodyScan == 0 {
		c.MaxBodyScan = DefaultMaxBodyScan
	}
	c.MaxClientConns = cmp.Or(c.MaxClientConns, DefaultMaxClientConns)
	c.MaxBuffer = cmp.Or(c.MaxBuffer, DefaultMaxBuffer)
	c.HeaderTimeout = cmp.Or(c.HeaderTimeout, DefaultHeaderTimeout)
	c.IdleTimeout = cmp.Or(c.IdleTimeout, DefaultIdleTimeout)
	c.StallTimeout = cmp.Or(c.StallTimeout, DefaultStallTimeout)
	c.MaxEvents = cmp.Or(c.MaxEvents, DefaultMaxEvents)
	if c.CAFile == "" {
		c.CAFile = DefaultCAFile
	}
	if c.CAValidity == 0 {
		c.CAValidity = 24 * time.Hour
	}
	if c.Audit == nil {
		c.Audit = func(Event) {}
	}
	return c
}
