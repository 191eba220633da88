package egress

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

// pctStrict percent-encodes every byte of s but letters, digits, "-._~"
// and those of keep, with upper-case hex: Python's urllib.parse.quote
// (keep "/", its default; "" for safe=”), PHP's rawurlencode and most
// RFC 3986 encoders.
func pctStrict(s, keep string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~"+keep, c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// A bound host that reflects the value percent-encoded as Python's quote()
// and PHP's rawurlencode do (an AWS-style key holds "/" and "+", which Go's
// query and path escaping each treat differently from them) has the value
// redacted too.
func TestStrictPercentEncodingRedacted(t *testing.T) {
	const value = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY=="
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := r.Header.Get("Authorization")
		w.Header().Set("Location", "/next?k="+pctStrict(v, "/"))
		for _, f := range []string{pctStrict(v, "/"), pctStrict(v, ""), lowerHex(pctStrict(v, "/")), lowerHex(pctStrict(v, ""))} {
			fmt.Fprintf(w, "[%s]\n", f)
		}
	}))
	defer ts.Close()
	ph := NewPlaceholder()
	h := start(t, Config{Allow: rules(t, "api.test"), Resolve: map[string][]netip.Addr{"api.test": {loop4}},
		Secrets: []Secret{{Name: "KEY", Placeholder: ph, Value: value, Hosts: rules(t, "api.test"), AllowHTTP: true}}})
	req, _ := http.NewRequest("GET", fmt.Sprintf("http://api.test:%d/", portOf(t, ts)), nil)
	req.Header.Set("Authorization", ph)
	res, err := h.client(nil).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	got := res.Header.Get("Location") + "\n" + string(body)
	if strings.Count(got, ph) != 5 {
		t.Errorf("want the placeholder in the Location and the 4 lines, got:\n%s", got)
	}
	for _, f := range []string{pctStrict(value, "/"), pctStrict(value, "")} {
		if strings.Contains(strings.ToLower(got), strings.ToLower(f)) {
			t.Errorf("the value reached the sandbox as %q:\n%s", f, got)
		}
	}
}
