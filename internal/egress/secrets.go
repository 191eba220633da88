package egress

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// secret is a Secret prepared for substitution and redaction.
type secret struct {
	Secret
	// forms are the encodings of Value that may be echoed back, each
	// redacted to the placeholder in responses.
	forms [][]byte
	// lowerForms are forms in lower case, to find them in header field
	// names, which Go re-cases as it reads them.
	lowerForms []string
}

func prepareSecret(s Secret) *secret {
	ps := &secret{Secret: s}
	seen := map[string]bool{}
	for _, f := range valueForms(s.Value) {
		if f != "" && !seen[f] {
			seen[f] = true
			ps.forms = append(ps.forms, []byte(f))
		}
	}
	// Longest first, so that redactString never breaks a longer form by
	// replacing a shorter one inside it.
	slices.SortStableFunc(ps.forms, func(a, b []byte) int { return len(b) - len(a) })
	for _, f := range ps.forms {
		ps.lowerForms = append(ps.lowerForms, strings.ToLower(string(f)))
	}
	return ps
}

// minBase64Core is the shortest base64 run of a value embedded in a longer
// base64 text that is redacted: shorter runs would match unrelated data.
const minBase64Core = 8

// valueForms are the forms of v redacted from responses: v raw; in a JSON
// string (Go's and PHP's escaping, and a JSON string inside a JSON
// string); percent-encoded as a query or a path (Go's escaping), and with
// every byte but RFC 3986's unreserved characters encoded, "/" kept or not
// (Python's quote, PHP's rawurlencode), with upper- and lower-case hex;
// base64 (standard and URL alphabets, with and without padding); and the
// runs of base64 that v yields inside a longer base64 text (as in "Basic
// base64(user:token)"), at each of its three possible alignments. Values made only of [A-Za-z0-9._~-] (most API keys) read the
// same in the raw, JSON and percent forms.
func valueForms(v string) []string {
	j, jh := jsonEscape(v), jsonEscapeHTML(v)
	q, pe := url.QueryEscape(v), url.PathEscape(v)
	su, sp := pctEscape(v, "/"), pctEscape(v, "")
	forms := []string{v, j, jh, strings.ReplaceAll(j, "/", `\/`), strings.ReplaceAll(jh, "/", `\/`),
		jsonEscape(j), jsonEscapeHTML(j), jsonEscape(jh), jsonEscapeHTML(jh), q, pe, lowerHex(q), lowerHex(pe),
		su, sp, lowerHex(su), lowerHex(sp)}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		forms = append(forms, enc.EncodeToString([]byte(v)))
	}
	return append(forms, base64Runs(v)...)
}

// base64Runs are the base64 characters made of v's bits alone when v
// follows a bytes (mod 3) of other data in a base64 text: characters
// shared with the data around v differ with that data and are left out,
// so at most 5 bits of v at each end survive redaction.
func base64Runs(v string) []string {
	var out []string
	for a := range 3 {
		b := append(make([]byte, a), v...)
		first := (8*a + 5) / 6         // first character wholly within v
		last := (8*(a+len(v)) - 6) / 6 // last one
		if last-first+1 < minBase64Core {
			continue
		}
		for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
			out = append(out, enc.EncodeToString(b)[first:last+1])
		}
	}
	return out
}

// pctEscape percent-encodes every byte of v but letters, digits, "-._~"
// and those of keep, with upper-case hex: Python's urllib.parse.quote
// (keep "/", its default), PHP's rawurlencode and JavaScript's
// encodeURIComponent (but for !'()*) write a value so.
func pctEscape(v, keep string) string {
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ {
		c := v[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~"+keep, c) >= 0 {
			b = append(b, c)
		} else {
			b = append(b, '%', hex[c>>4], hex[c&15])
		}
	}
	return string(b)
}

// lowerHex is s with the hex digits of its percent escapes in lower case.
func lowerHex(s string) string {
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			b[i+1], b[i+2] = lowerASCII(b[i+1]), lowerASCII(b[i+2])
			i += 2
		}
	}
	return string(b)
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func (s *secret) boundTo(t target) bool {
	for _, r := range s.Hosts {
		if r.matches(t) {
			return true
		}
	}
	return false
}

// jsonEscape is s as it appears inside a JSON string (no quotes).
func jsonEscape(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	out := strings.TrimSuffix(b.String(), "\n")
	return out[1 : len(out)-1]
}

// jsonEscapeHTML is s as encoding/json writes it by default (<, >, &
// escaped as \u003c, \u003e, \u0026).
func jsonEscapeHTML(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

// bodyKind says how a request body of this Content-Type is substituted:
// "" (not scanned), "json", "form" or "text".
func bodyKind(contentType string) string {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return ""
	}
	switch {
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		return "json"
	case mt == "application/x-www-form-urlencoded":
		return "form"
	case strings.HasPrefix(mt, "text/"):
		return "text"
	}
	return ""
}

// encodeFor is the secret's value encoded for where its placeholder was
// found.
func encodeFor(value, where string) string {
	switch where {
	case "json":
		return jsonEscape(value)
	case "form", "query":
		return url.QueryEscape(value)
	case "path":
		return url.PathEscape(value)
	}
	return value
}

// nameCarries reports whether the header field name k carries a form of a
// secret's value, ignoring case.
func nameCarries(k string, secrets []*secret) bool {
	k = strings.ToLower(k)
	for _, s := range secrets {
		for _, f := range s.lowerForms {
			if strings.Contains(k, f) {
				return true
			}
		}
	}
	return false
}

// redactString replaces every form of every secret value in v, longest
// first across the secrets, so that a value holding another's (an id, and
// "id:secret") is replaced whole, not the shorter one inside it.
func redactString(v string, secrets []*secret) string {
	type found struct {
		form []byte
		ph   string
	}
	var hits []found
	for _, s := range secrets {
		for _, f := range s.forms {
			if strings.Contains(v, string(f)) {
				hits = append(hits, found{f, s.Placeholder})
			}
		}
	}
	slices.SortStableFunc(hits, func(a, b found) int { return len(b.form) - len(a.form) })
	for _, h := range hits {
		v = strings.ReplaceAll(v, string(h.form), h.ph)
	}
	return v
}

// redactHeader redacts every value in h, and drops any field whose name
// carries a form of a value, in any case: names are canonicalised as they
// are read (sk-live-... arrives as Sk-Live-...).
func redactHeader(h http.Header, secrets []*secret) {
	for k, vs := range h {
		if nameCarries(k, secrets) {
			delete(h, k)
			continue
		}
		for i, v := range vs {
			vs[i] = redactString(v, secrets)
		}
	}
}
