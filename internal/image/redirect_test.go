package image

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/image/imagetest"
)

// remoteRegistry serves handler over TLS on loopback as if it were the
// remote registry registry.example: the returned transport trusts its
// certificate and dials it for registry.example, and only loopback
// otherwise (no test reaches another host).
func remoteRegistry(t *testing.T, handler http.Handler) http.RoundTripper {
	t.Helper()
	s := httptest.NewUnstartedServer(handler)
	s.StartTLS()
	t.Cleanup(s.Close)
	roots := s.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	var d net.Dialer
	return &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "example.com"},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			switch {
			case host == "registry.example":
				return d.DialContext(ctx, network, s.Listener.Addr().String())
			case strings.EqualFold(strings.TrimSuffix(host, "."), "localhost"):
				return d.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
			case net.ParseIP(host) != nil && net.ParseIP(host).IsLoopback():
				return d.DialContext(ctx, network, addr)
			}
			return nil, fmt.Errorf("test transport: %s is not reachable in tests", addr)
		},
	}
}

// A remote registry must not send skillbox to the host's own loopback
// services (whatever path it likes) by redirecting to them, or by naming
// one as its token service: a loopback registry is one the operator or the
// skill names, never one a remote server picks.
func TestRemoteRegistryCannotSendRequestsToLoopback(t *testing.T) {
	for _, tc := range []struct{ how, host string }{
		{"redirect", "localhost"}, {"redirect", "127.0.0.1"}, {"redirect", "LocalHost."},
		{"realm", "localhost"}, {"realm", "127.0.0.1"},
	} {
		t.Run(tc.how+"/"+tc.host, func(t *testing.T) {
			port, conns := imagetest.CountingServer(t, "{}")
			target := fmt.Sprintf("%s:%d", tc.host, port)
			c := newCache(t)
			c.Transport = remoteRegistry(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.how == "realm" {
					w.Header().Set("WWW-Authenticate", `Bearer realm="https://`+target+`/admin/do-something",service="x"`)
					w.WriteHeader(http.StatusUnauthorized)
					return
				}
				if r.URL.Path == "/v2/" {
					w.WriteHeader(http.StatusOK)
					return
				}
				http.Redirect(w, r, "http://"+target+"/admin/do-something", http.StatusTemporaryRedirect)
			}))
			ref, err := ParseRef("registry.example/skills/pdf:1", "")
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Resolve(context.Background(), ref)
			if err == nil {
				t.Fatal("resolved through a loopback server")
			}
			if n := conns.Load(); n != 0 {
				t.Fatalf("the remote registry's %s reached %s (%d connections): %v", tc.how, target, n, err)
			}
			if tc.host != "127.0.0.1" { // go-containerregistry's own checks refuse that one
				wantKind(t, err, errdefs.Denied, "may not send skillbox to a loopback address")
			}
		})
	}
}

// windowsIndex is an OCI index of n entries, none for linux.
func windowsIndex(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%064x","size":1,"platform":{"os":"windows","architecture":"amd64","os.version":"10.0.%d"}}`, i, i%100)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// indexRegistry is a loopback registry answering every manifest request
// with body, with a Content-Length or (chunked) without.
func indexRegistry(t *testing.T, body []byte, length bool) string {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			return
		}
		w.Header().Set("Content-Type", "application/vnd.oci.image.index.v1+json")
		if length {
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		}
		for b := body; len(b) > 0; {
			n := min(len(b), 64<<10)
			if _, err := w.Write(b[:n]); err != nil {
				return
			}
			if !length {
				w.(http.Flusher).Flush()
			}
			b = b[n:]
		}
	}))
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

// A hostile registry's manifest is read up to MaxManifestSize only:
// go-containerregistry reads 100 MiB, and decoding an index that size
// took most of a GiB of the host's memory.
func TestOversizedManifestIsRefused(t *testing.T) {
	body := windowsIndex(MaxManifestSize/150 + 1000)
	if len(body) <= MaxManifestSize {
		t.Fatalf("test index of %d bytes is not over the cap", len(body))
	}
	for _, length := range []bool{true, false} {
		host := indexRegistry(t, body, length)
		ref, err := ParseRef(host+"/skills/pdf:1", "")
		if err != nil {
			t.Fatal(err)
		}
		_, err = newCache(t).Resolve(context.Background(), ref)
		wantKind(t, err, errdefs.Limit, "image.MaxManifestSize")
	}
}

// An index without this platform names the platforms it has, each once
// and a few at most, not thousands.
func TestIndexWithoutThisPlatformNamesAFewPlatforms(t *testing.T) {
	host := indexRegistry(t, windowsIndex(10000), true)
	ref, err := ParseRef(host+"/skills/pdf:1", "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = newCache(t).Resolve(context.Background(), ref)
	wantKind(t, err, errdefs.Unsupported, "windows/amd64:10.0.0, ")
	if len(err.Error()) > 2048 || !strings.Contains(err.Error(), "and 84 more") {
		t.Fatalf("error of %d bytes: %.300s…", len(err.Error()), err)
	}
}

// A manifest's layer may name URLs to fetch it from (a "foreign",
// non-distributable layer: Windows base layers). go-containerregistry
// fetches them when the registry has no blob, so a hostile manifest would
// send skillbox to any host and path it names. skillbox fetches layers
// from the image's registry only.
func TestLayerURLsAreRefused(t *testing.T) {
	var dials []string
	var mu sync.Mutex
	img := pythonish(t, "foreign")
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	m = m.DeepCopy()
	m.Layers[0].URLs = []string{"https://internal.example/admin/do-something"}
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	others := map[string][]byte{m.Config.Digest.String(): cfg}
	for _, l := range m.Layers[1:] {
		lay, err := img.LayerByDigest(l.Digest)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := lay.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		others[l.Digest.String()] = b
	}
	tr := remoteRegistry(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v2/":
		case strings.Contains(r.URL.Path, "/manifests/"):
			w.Header().Set("Content-Type", string(m.MediaType))
			w.Write(raw)
		case strings.Contains(r.URL.Path, "/blobs/"):
			b, ok := others[path.Base(r.URL.Path)]
			if !ok {
				http.NotFound(w, r) // the foreign layer: "not here"
				return
			}
			w.Write(b)
		}
	})).(*http.Transport)
	dial := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		dials = append(dials, addr)
		mu.Unlock()
		return dial(ctx, network, addr)
	}
	c := newCache(t)
	c.Transport = tr
	ref, err := ParseRef("registry.example/skills/pdf:1", "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Pull(context.Background(), ref)
	mu.Lock()
	defer mu.Unlock()
	for _, d := range dials {
		if !strings.HasPrefix(d, "registry.example:") {
			t.Errorf("the pull dialled %s, a host the manifest named", d)
		}
	}
	wantKind(t, err, errdefs.Invalid, "URLs")
}

// A registry that accepts the connection and never answers must not hold
// a resolve (skillbox trust, lock, a sandbox's open) forever.
func TestResolveOfSilentRegistryTimesOut(t *testing.T) {
	release := make(chan struct{})
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			return
		}
		select { // the manifest never comes
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(s.Close)
	t.Cleanup(func() { close(release) })
	c := newCache(t)
	c.ResolveTimeout = time.Second
	ref, err := ParseRef(strings.TrimPrefix(s.URL, "http://")+"/skills/pdf:1", "")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.Resolve(context.Background(), ref)
		done <- err
	}()
	select {
	case err := <-done:
		wantKind(t, err, errdefs.Timeout, "image.Cache.ResolveTimeout")
	case <-time.After(time.Minute): // a bound against a hang only
		t.Fatal("Resolve of a registry that never answers did not return")
	}
}
