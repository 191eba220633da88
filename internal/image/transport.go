package image

import (
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/skillbox-dev/skillbox/errdefs"
)

// PlainHTTPAllowed reports whether a registry at host (a URL's host, with
// or without a port) may be reached over plain HTTP: only on loopback —
// "localhost", 127.0.0.0/8 and ::1 — as docker does without an
// insecure-registries entry. go-containerregistry would also fall back to
// HTTP for private (RFC 1918) addresses and *.local names; skillbox does
// not, because anyone on such a network could then serve the image.
func PlainHTTPAllowed(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	h = strings.TrimSuffix(strings.Trim(h, "[]"), ".")
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// httpGuard refuses any plain-HTTP request to a host that is not loopback:
// the registry's own, its token service's and every redirect's (blobs are
// often redirected to a CDN), since the http.Client calls the transport for
// each. It sits under go-containerregistry's transports, so no request
// leaves without passing it.
//
// For a registry that is not loopback it also refuses every request to a
// loopback host: a remote registry would otherwise send skillbox to any
// path of the host's own services by a redirect, a token service (the
// realm of its WWW-Authenticate) or a layer's URL ("localhost", which
// go-containerregistry's checks do not treat as loopback). A loopback
// registry is one a reference names, never one a remote server picks.
type httpGuard struct {
	next http.RoundTripper
	// registry is the host the reference names ("" for none).
	registry string
}

func (g httpGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" && !PlainHTTPAllowed(req.URL.Host) {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, errdefs.New(errdefs.Denied, "refusing plain %s to %s: only loopback registries may be reached without TLS", req.URL.Scheme, req.URL.Host)
	}
	if g.registry != "" && !PlainHTTPAllowed(g.registry) && PlainHTTPAllowed(req.URL.Host) {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, errdefs.New(errdefs.Denied, "refusing a request to %s for the registry %s: a remote registry (its redirects, token service or layer URLs) may not send skillbox to a loopback address", req.URL.Host, g.registry)
	}
	resp, err := g.next.RoundTrip(req)
	if err != nil || req.Method != http.MethodGet || !manifestRequest(req) {
		return resp, err
	}
	if resp.ContentLength > MaxManifestSize {
		resp.Body.Close()
		return nil, manifestCap(req)
	}
	resp.Body = &cappedBody{ReadCloser: resp.Body, left: MaxManifestSize, req: req}
	return resp, nil
}

// MaxManifestSize bounds a manifest or index read from a registry: JSON of
// a few KiB in practice, and the OCI distribution spec has registries
// accept 4 MiB. go-containerregistry reads up to 100 MiB, which decoding
// made most of a GiB of memory (an index of 650,000 entries).
const MaxManifestSize = 4 << 20

// manifestRequest reports whether req fetches a manifest or index
// (/v2/NAME/manifests/REF), or is a redirect of such a request.
func manifestRequest(req *http.Request) bool {
	for r := req; r != nil; {
		if strings.HasPrefix(r.URL.Path, "/v2/") && strings.Contains(r.URL.Path, "/manifests/") {
			return true
		}
		if r.Response == nil {
			return false
		}
		r = r.Response.Request
	}
	return false
}

func manifestCap(req *http.Request) error {
	return errdefs.New(errdefs.Limit, "manifest at %s is larger than %d bytes, the most skillbox reads (image.MaxManifestSize)", req.URL.Redacted(), MaxManifestSize)
}

// cappedBody is a manifest response's body, an error past MaxManifestSize.
type cappedBody struct {
	io.ReadCloser
	left int64
	req  *http.Request
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.ReadCloser.Read(p)
	if b.left -= int64(n); b.left < 0 {
		return 0, manifestCap(b.req)
	}
	return n, err
}
