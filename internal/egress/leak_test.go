package egress

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/netip"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

// leakValue reads differently in every form the proxy redacts.
const leakValue = `sk-live/"tok en"+%&=0123456789abcdef`

// echoHost is a bound host that echoes the Authorization header it gets
// back in every place a response has: 1xx headers, headers, trailers,
// redirects, bodies of any size and encoding, and every encoded form.
func echoHost(t *testing.T) *httptest.Server {
	return httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		switch r.URL.Path {
		case "/early":
			w.Header().Set("Link", "</style.css?k="+url.QueryEscape(auth)+">; rel=preload")
			w.Header().Set("X-Echo", auth)
			w.WriteHeader(http.StatusEarlyHints)
			io.WriteString(w, "ok")
		case "/redirect":
			http.Redirect(w, r, "/next?k="+url.QueryEscape(auth)+"&p="+url.PathEscape(auth), http.StatusFound)
		case "/trailer":
			w.Header().Set("Trailer", "X-Echo-Trailer")
			io.WriteString(w, "body")
			w.(http.Flusher).Flush()
			w.Header().Set("X-Echo-Trailer", auth)
			w.Header().Set(http.TrailerPrefix+"X-Late", auth) // announced only now
		case "/forms":
			for _, s := range []string{auth, jsonEscape(auth), jsonEscapeHTML(auth), url.QueryEscape(auth),
				lowerHex(url.PathEscape(auth)), base64.StdEncoding.EncodeToString([]byte(auth)),
				base64.RawURLEncoding.EncodeToString([]byte(auth)),
				"Basic " + base64.StdEncoding.EncodeToString([]byte("user:"+auth)),
				"Basic " + base64.StdEncoding.EncodeToString([]byte("us:"+auth+"!")),
				"Basic " + base64.URLEncoding.EncodeToString([]byte("u:"+auth+"??")),
			} {
				fmt.Fprintf(w, "[%s]\n", s)
			}
		case "/range":
			w.Header().Set("X-Range", r.Header.Get("Range")+"|"+r.Header.Get("If-Range"))
			io.WriteString(w, auth)
		case "/partial":
			w.Header().Set("Content-Range", "bytes 7-9/40")
			w.WriteHeader(http.StatusPartialContent)
			io.WriteString(w, auth[7:10])
		default:
			encodeEcho(t, w, r.URL.Path, auth)
		}
	}))
}

// encodeEcho answers /enc/CODINGS with the value in a body so encoded:
// CODINGS is a list separated by "," or by ";", which also starts a new
// Content-Encoding line.
func encodeEcho(t *testing.T, w http.ResponseWriter, path, auth string) {
	coding, ok := strings.CutPrefix(path, "/enc/")
	if !ok {
		http.NotFound(w, nil)
		return
	}
	body := []byte("your key " + auth + " is wrong; " + strings.Repeat("pad ", 5000) + auth)
	for line := range strings.SplitSeq(coding, ";") {
		codings := strings.Split(line, ",")
		for _, c := range codings {
			if c != "identity" {
				body = compress(t, c, body)
			}
		}
		// Raw deflate is sent as "deflate", as some servers do.
		w.Header().Add("Content-Encoding", strings.ReplaceAll(strings.Join(codings, ", "), "rawdeflate", "deflate"))
	}
	w.Write(body)
}

func compress(t *testing.T, coding string, b []byte) []byte {
	var buf bytes.Buffer
	var zw io.WriteCloser
	switch coding {
	case "gzip":
		zw = gzip.NewWriter(&buf)
	case "deflate":
		zw = zlib.NewWriter(&buf)
	case "rawdeflate":
		zw, _ = flate.NewWriter(&buf, flate.DefaultCompression)
	case "br":
		zw = brotli.NewWriter(&buf)
	case "zstd":
		var err error
		if zw, err = zstd.NewWriter(&buf); err != nil {
			t.Error(err)
		}
	default: // unknown codings pass as they are
		return b
	}
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// leaks reports the forms of value found in s.
func leaks(s, value string) []string {
	var out []string
	for _, f := range valueForms(value) {
		if strings.Contains(s, f) {
			out = append(out, f)
		}
	}
	return out
}

// boundEcho is a proxy binding leakValue to an echoing host.
type boundEcho struct {
	*harness
	ph    string
	base  string
	roots *x509.CertPool // the sandbox's roots: the egress CA, for https
}

// newBoundEcho starts the echoing host, over plain HTTP or, intercepted,
// over HTTPS.
func newBoundEcho(t *testing.T, cfg Config, https bool) *boundEcho {
	ts := echoHost(t)
	if https {
		ts.StartTLS()
		cfg.UpstreamRootCAs = serverPool(ts)
	} else {
		ts.Start()
	}
	t.Cleanup(ts.Close)
	host, scheme := "api.test", "http"
	if https {
		host, scheme = "example.com", "https" // the name httptest's certificate is for
	}
	ph := NewPlaceholder()
	cfg.Allow = rules(t, host)
	cfg.Resolve = map[string][]netip.Addr{host: {loop4}}
	cfg.Secrets = []Secret{{Name: "KEY", Placeholder: ph, Value: leakValue, Hosts: rules(t, host), AllowHTTP: true}}
	b := &boundEcho{harness: start(t, cfg), ph: ph, base: fmt.Sprintf("%s://%s:%d", scheme, host, portOf(t, ts))}
	if https {
		b.roots = b.caPool(t)
	}
	return b
}

// do sends the placeholder as the Authorization header to path.
func (b *boundEcho) do(t *testing.T, path string, hdr http.Header, trace *httptrace.ClientTrace) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", b.base+path, nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", b.ph)
	if trace != nil {
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	}
	c := b.client(b.roots)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.Transport.(*http.Transport).DisableCompression = true
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatalf("GET %s: reading: %v", path, err)
	}
	return res, string(body)
}

func TestNoLeakThroughResponses(t *testing.T) {
	t.Run("http", func(t *testing.T) { testNoLeakThroughResponses(t, false) })
	t.Run("https", func(t *testing.T) { testNoLeakThroughResponses(t, true) })
}

func testNoLeakThroughResponses(t *testing.T, https bool) {
	b := newBoundEcho(t, Config{}, https)
	checkNoLeak := func(t *testing.T, what string, s string) {
		t.Helper()
		if l := leaks(s, leakValue); len(l) > 0 {
			t.Errorf("%s leaks %q: %q", what, l, s)
		}
	}
	t.Run("1xx", func(t *testing.T) {
		var mu sync.Mutex
		var early []string
		res, body := b.do(t, "/early", nil, &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			mu.Lock()
			defer mu.Unlock()
			early = append(early, fmt.Sprint(code, h))
			return nil
		}})
		mu.Lock()
		defer mu.Unlock()
		if res.StatusCode != 200 || body != "ok" || len(early) != 1 || !strings.Contains(early[0], b.ph) {
			t.Fatalf("got %d %q, 1xx %q", res.StatusCode, body, early)
		}
		checkNoLeak(t, "103 Early Hints", early[0])
	})
	t.Run("redirect", func(t *testing.T) {
		res, _ := b.do(t, "/redirect", nil, nil)
		loc := res.Header.Get("Location")
		if res.StatusCode != http.StatusFound || !strings.Contains(loc, url.QueryEscape(b.ph)) {
			t.Fatalf("got %d, Location %q", res.StatusCode, loc)
		}
		checkNoLeak(t, "Location", loc)
	})
	t.Run("trailers", func(t *testing.T) {
		res, body := b.do(t, "/trailer", nil, nil)
		if body != "body" || res.Trailer.Get("X-Echo-Trailer") != b.ph || res.Trailer.Get("X-Late") != b.ph {
			t.Fatalf("body %q, trailers %q", body, res.Trailer)
		}
		checkNoLeak(t, "trailers", fmt.Sprint(res.Trailer))
	})
	t.Run("forms", func(t *testing.T) {
		res, body := b.do(t, "/forms", nil, nil)
		if res.StatusCode != 200 || strings.Count(body, b.ph) < 10 {
			t.Fatalf("got %d %q", res.StatusCode, body)
		}
		checkNoLeak(t, "body", body)
		// No run of the value's base64 longer than the 5 bits at each end.
		for _, line := range strings.Split(body, "\n") {
			if enc, ok := strings.CutPrefix(line, "[Basic "); ok {
				if strings.Count(enc, b.ph) != 1 {
					t.Errorf("Basic credentials not redacted: %q", line)
				}
			}
		}
	})
	t.Run("range", func(t *testing.T) {
		res, body := b.do(t, "/range", http.Header{"Range": {"bytes=7-9"}, "If-Range": {`"v1"`}}, nil)
		if res.StatusCode != 200 || res.Header.Get("X-Range") != "|" || body != b.ph {
			t.Fatalf("got %d, upstream saw Range %q, body %q", res.StatusCode, res.Header.Get("X-Range"), body)
		}
	})
	t.Run("206", func(t *testing.T) {
		res, body := b.do(t, "/partial", nil, nil)
		if res.StatusCode != http.StatusBadGateway || !strings.Contains(body, "partial (206)") || strings.Contains(body, leakValue[7:10]) {
			t.Fatalf("got %d %q", res.StatusCode, body)
		}
		ev := b.rec.wait(t, func(e Event) bool { return strings.Contains(e.Reason, "206") })
		if ev.Decision != DecisionDeny || ev.Status != http.StatusBadGateway {
			t.Fatalf("event %+v", ev)
		}
	})
}

func TestNoLeakThroughEncodings(t *testing.T) {
	b := newBoundEcho(t, Config{}, false)
	// A coding on a second Content-Encoding line counts as much as one on
	// the first: ";" starts a line.
	for _, coding := range []string{"gzip", "deflate", "rawdeflate", "br", "zstd", "gzip,br", "zstd,deflate", "identity;gzip", "gzip;br"} {
		t.Run(coding, func(t *testing.T) {
			res, body := b.do(t, "/enc/"+coding, nil, nil)
			if res.StatusCode != 200 || res.Header.Get("Content-Encoding") != "" || strings.Count(body, b.ph) != 2 || !strings.HasPrefix(body, "your key ") {
				t.Fatalf("got %d %q, body %.60q", res.StatusCode, res.Header.Get("Content-Encoding"), body)
			}
			if l := leaks(body, leakValue); len(l) > 0 {
				t.Fatalf("leaks %q", l)
			}
		})
	}
	for _, coding := range []string{"compress", "gzip,gzip,gzip", "x-unknown", "gzip;gzip;gzip", "gzip,gzip;br", "identity;x-unknown"} {
		t.Run(coding, func(t *testing.T) {
			res, body := b.do(t, "/enc/"+coding, nil, nil)
			if res.StatusCode != http.StatusBadGateway || !strings.Contains(body, "cannot be inspected") {
				t.Fatalf("got %d %.120q", res.StatusCode, body)
			}
		})
	}
}

// TestNoLeakInLargeBodies puts the value across every read boundary of a
// body of several MiB, written in odd-sized pieces.
func TestNoLeakInLargeBodies(t *testing.T) {
	var sent bytes.Buffer
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		var body bytes.Buffer
		for body.Len() < 6<<20 {
			// The value ends k bytes after a 16 KiB boundary, for every k.
			k := (body.Len() / (16 << 10)) % (len(auth) + 2)
			next := (body.Len()/(16<<10)+1)*(16<<10) + k - len(auth)
			body.WriteString(strings.Repeat("x", max(next-body.Len(), 0)))
			body.WriteString(auth)
		}
		sent.Write(body.Bytes())
		for b := body.Bytes(); len(b) > 0; {
			n := min(len(b), 7919)
			w.Write(b[:n])
			w.(http.Flusher).Flush()
			b = b[n:]
		}
	}))
	defer ts.Close()
	ph := NewPlaceholder()
	h := start(t, Config{
		Allow:   rules(t, "api.test"),
		Resolve: map[string][]netip.Addr{"api.test": {loop4}},
		Secrets: []Secret{{Name: "KEY", Placeholder: ph, Value: leakValue, Hosts: rules(t, "api.test"), AllowHTTP: true}},
	})
	req, _ := http.NewRequest("GET", fmt.Sprintf("http://api.test:%d/", portOf(t, ts)), nil)
	req.Header.Set("Authorization", ph)
	res, err := h.client(nil).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.ReplaceAll(sent.Bytes(), []byte(leakValue), []byte(ph))
	if !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes (%d placeholders), want %d (%d)", len(got), bytes.Count(got, []byte(ph)), len(want), bytes.Count(want, []byte(ph)))
	}
}

func TestBase64Runs(t *testing.T) {
	const v = "tok-0123456789"
	s := prepareSecret(Secret{Name: "K", Placeholder: "PLACEHOLDER-000000", Value: v})
	for pre := range 6 {
		for suf := range 4 {
			for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding} {
				text := enc.EncodeToString([]byte(strings.Repeat("\xfb", pre) + v + strings.Repeat("\xff", suf)))
				got := redactString(text, []*secret{s})
				if !strings.Contains(got, "PLACEHOLDER-000000") {
					t.Errorf("prefix %d suffix %d: %q not redacted", pre, suf, text)
				}
				// What is left carries at most a few bits of v at each end.
				if left := len(got) - len("PLACEHOLDER-000000"); left > (pre*8+5)/6+(suf*8+5)/6+4 {
					t.Errorf("prefix %d suffix %d: %q left %d characters", pre, suf, got, left)
				}
			}
		}
	}
}

// TestValueInHeaderNamesDropped checks that a field whose name carries the
// value is dropped whatever its case: Go canonicalises the names it reads
// (sk-live-... arrives as Sk-Live-...), in 1xx headers, headers and
// trailers alike, and the fields around it stay.
func TestValueInHeaderNamesDropped(t *testing.T) {
	const value = "sk-live-0123456789abcdef" // a token: valid in a field name
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		h := w.Header()
		h["e-"+auth] = []string{"1"} // written as is
		h.Set("X-Keep", "1")
		w.WriteHeader(http.StatusEarlyHints)
		delete(h, "e-"+auth)
		h[auth] = []string{"1"}
		h.Set("Trailer", "X-Keep-Trailer")
		io.WriteString(w, "body")
		w.(http.Flusher).Flush()
		h.Set("X-Keep-Trailer", "1")
		h[http.TrailerPrefix+"t-"+auth] = []string{"1"}
	}))
	defer ts.Close()
	ph := NewPlaceholder()
	h := start(t, Config{
		Allow:   rules(t, "api.test"),
		Resolve: map[string][]netip.Addr{"api.test": {loop4}},
		Secrets: []Secret{{Name: "KEY", Placeholder: ph, Value: value, Hosts: rules(t, "api.test"), AllowHTTP: true}},
	})
	var mu sync.Mutex
	var early []textproto.MIMEHeader
	req, _ := http.NewRequest("GET", fmt.Sprintf("http://api.test:%d/", portOf(t, ts)), nil)
	req.Header.Set("Authorization", ph)
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		Got1xxResponse: func(_ int, h textproto.MIMEHeader) error {
			mu.Lock()
			defer mu.Unlock()
			early = append(early, h)
			return nil
		},
	}))
	res, err := h.client(nil).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(res)
	res.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	if body != "body" || len(early) != 1 || early[0].Get("X-Keep") != "1" || res.Header.Get("X-Keep") != "1" || res.Trailer.Get("X-Keep-Trailer") != "1" {
		t.Fatalf("body %q, 1xx %q, header %q, trailer %q", body, early, res.Header, res.Trailer)
	}
	for what, hdr := range map[string]http.Header{"103": http.Header(early[0]), "header": res.Header, "trailer": res.Trailer} {
		for k, vs := range hdr {
			if strings.Contains(strings.ToLower(k+" "+strings.Join(vs, " ")), value) {
				t.Errorf("%s field %q: %q carries the value", what, k, vs)
			}
		}
	}
}
