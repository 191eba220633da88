package egress

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/url"
	"strings"
)

// secret is a Secret prepared for substitution and redaction.
type secret struct {
	Secret
	// forms are the encodings of Value that may be echoed back, each
	// redacted to the placeholder in responses.
	forms [][]byte
}

func prepareSecret(s Secret) *secret {
	ps := &secret{Secret: s}
	seen := map[string]bool{}
	// The value as written raw, in a JSON string (Go's and PHP's escaping),
	// in a JSON string inside a JSON string, and URL-escaped. Values made
	// only of [A-Za-z0-9._~-] (most API keys) read the same in all of them.
	j := jsonEscape(s.Value)
	jh := jsonEscapeHTML(s.Value)
	for _, f := range []string{s.Value, j, jh, strings.ReplaceAll(j, "/", `\/`), strings.ReplaceAll(jh, "/", `\/`),
		jsonEscape(j), jsonEscapeHTML(j), jsonEscape(jh), jsonEscapeHTML(jh), url.QueryEscape(s.Value), url.PathEscape(s.Value)} {
		if !seen[f] {
			seen[f] = true
			ps.forms = append(ps.forms, []byte(f))
		}
	}
	return ps
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

// redactor rewrites a response body stream, replacing every form of every
// secret value with that secret's placeholder. It holds back len(longest
// form)-1 bytes so that a value split across reads is still found.
type redactor struct {
	src     io.ReadCloser
	secrets []*secret
	maxLen  int
	in      []byte // read, not yet examined
	out     []byte // ready to return
	eof     bool
	err     error
}

func newRedactor(src io.ReadCloser, secrets []*secret) *redactor {
	r := &redactor{src: src, secrets: secrets}
	for _, s := range secrets {
		for _, f := range s.forms {
			r.maxLen = max(r.maxLen, len(f))
		}
	}
	return r
}

func (r *redactor) Read(p []byte) (int, error) {
	for len(r.out) == 0 {
		if r.eof {
			return 0, r.err
		}
		var buf [32 << 10]byte
		n, err := r.src.Read(buf[:])
		r.in = append(r.in, buf[:n]...)
		if err != nil {
			r.eof, r.err = true, err
		}
		r.process()
	}
	n := copy(p, r.out)
	r.out = r.out[n:]
	if len(r.out) == 0 {
		r.out = nil
	}
	return n, nil
}

// process moves what is settled from in to out.
func (r *redactor) process() {
	for {
		at, length, ph := -1, 0, ""
		for _, s := range r.secrets {
			for _, f := range s.forms {
				if i := bytes.Index(r.in, f); i >= 0 && (at < 0 || i < at || i == at && len(f) > length) {
					at, length, ph = i, len(f), s.Placeholder
				}
			}
		}
		if at < 0 {
			break
		}
		r.out = append(r.out, r.in[:at]...)
		r.out = append(r.out, ph...)
		r.in = r.in[at+length:]
	}
	keep := r.maxLen - 1
	if r.eof || keep < 0 {
		keep = 0
	}
	if len(r.in) > keep {
		cut := len(r.in) - keep
		r.out = append(r.out, r.in[:cut]...)
		r.in = append([]byte(nil), r.in[cut:]...)
	}
}

func (r *redactor) Close() error { return r.src.Close() }

// redactString replaces every form of every secret value in v.
func redactString(v string, secrets []*secret) string {
	for _, s := range secrets {
		for _, f := range s.forms {
			if strings.Contains(v, string(f)) {
				v = strings.ReplaceAll(v, string(f), s.Placeholder)
			}
		}
	}
	return v
}
