// Package jsonscan reads JSON in one pass, for documents large enough that
// encoding/json's byte-at-a-time scanner (run once to find a value's end,
// again to check it, and again to decode it) is the cost: a call's params
// and result (issue 17 target 2).
//
// It accepts exactly the documents encoding/json accepts and decodes them
// to the same values (json.Decoder with UseNumber: map[string]any, []any,
// json.Number, string, bool, nil; invalid UTF-8 and lone surrogates become
// U+FFFD; a repeated key keeps its last value). It reports only whether a
// document is valid, never why: a caller that needs the error's text asks
// encoding/json for it, on the slow path of a bad document. Where the two
// could ever disagree (a nesting depth near encoding/json's limit), it
// refuses, so the caller's fallback decides.
package jsonscan

import (
	"encoding/binary"
	"encoding/json"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth is the deepest nesting accepted; encoding/json refuses beyond
// 10000. Deeper documents are left to the caller's fallback.
const maxDepth = 9000

// Decode parses data, one JSON value with optional whitespace around it,
// into the value json.Decoder with UseNumber would give. ok is false when
// data is not valid JSON (or nested deeper than encoding/json's checks
// allow this package to be sure of).
func Decode(data []byte) (v any, ok bool) {
	p := parser{data: data, build: true}
	p.ws()
	v = p.value(0)
	p.ws()
	return v, !p.bad && p.i == len(data)
}

// Valid reports whether data is one valid JSON value with optional
// whitespace around it, as json.Valid does.
func Valid(data []byte) bool {
	p := parser{data: data}
	p.ws()
	p.value(0)
	p.ws()
	return !p.bad && p.i == len(data)
}

// Member is one member of an object: its key (unescaped) and the bytes
// of its value, Value = data[Start:End].
type Member struct {
	Key        string
	Start, End int
}

// Members checks that data is one valid JSON object (optional whitespace
// around it) and returns its members in order, without decoding their
// values. ok is false when data is not a valid JSON object.
func Members(data []byte) (m []Member, ok bool) {
	p := parser{data: data}
	p.ws()
	if p.i >= len(data) || data[p.i] != '{' {
		return nil, false
	}
	p.i++
	p.ws()
	if p.peek() == '}' {
		p.i++
	} else {
		for !p.bad {
			if p.peek() != '"' {
				return nil, false
			}
			p.i++
			p.build = true
			key := p.str()
			p.build = false
			p.ws()
			if p.peek() != ':' {
				return nil, false
			}
			p.i++
			p.ws()
			start := p.i
			p.value(1)
			if p.bad {
				return nil, false
			}
			m = append(m, Member{Key: key, Start: start, End: p.i})
			p.ws()
			switch p.peek() {
			case ',':
				p.i++
				p.ws()
				continue
			case '}':
				p.i++
			default:
				return nil, false
			}
			break
		}
	}
	p.ws()
	return m, !p.bad && p.i == len(data)
}

type parser struct {
	data  []byte
	i     int
	bad   bool
	build bool // build values; else only check
}

func (p *parser) peek() byte {
	if p.i < len(p.data) {
		return p.data[p.i]
	}
	return 0
}

func (p *parser) ws() {
	for p.i < len(p.data) {
		switch p.data[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) fail() any {
	p.bad = true
	p.i = len(p.data)
	return nil
}

func (p *parser) value(depth int) any {
	if p.i >= len(p.data) {
		return p.fail()
	}
	switch c := p.data[p.i]; {
	case c == '{':
		if depth >= maxDepth {
			return p.fail()
		}
		p.i++
		return p.object(depth + 1)
	case c == '[':
		if depth >= maxDepth {
			return p.fail()
		}
		p.i++
		return p.array(depth + 1)
	case c == '"':
		p.i++
		s := p.str()
		if !p.build || p.bad {
			return nil
		}
		return s
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	case c == 't':
		return p.literal("true", true)
	case c == 'f':
		return p.literal("false", false)
	case c == 'n':
		return p.literal("null", nil)
	}
	return p.fail()
}

func (p *parser) literal(lit string, v any) any {
	if len(p.data)-p.i < len(lit) || string(p.data[p.i:p.i+len(lit)]) != lit {
		return p.fail()
	}
	p.i += len(lit)
	return v
}

func (p *parser) object(depth int) any {
	var m map[string]any
	if p.build {
		m = map[string]any{}
	}
	p.ws()
	if p.peek() == '}' {
		p.i++
		if !p.build {
			return nil
		}
		return m
	}
	for {
		if p.peek() != '"' {
			return p.fail()
		}
		p.i++
		key := p.str()
		p.ws()
		if p.peek() != ':' {
			return p.fail()
		}
		p.i++
		p.ws()
		v := p.value(depth)
		if p.bad {
			return nil
		}
		if p.build {
			m[key] = v
		}
		p.ws()
		switch p.peek() {
		case ',':
			p.i++
			p.ws()
		case '}':
			p.i++
			if !p.build {
				return nil
			}
			return m
		default:
			return p.fail()
		}
	}
}

func (p *parser) array(depth int) any {
	var a []any
	if p.build {
		a = []any{}
	}
	p.ws()
	if p.peek() == ']' {
		p.i++
		if !p.build {
			return nil
		}
		return a
	}
	for {
		v := p.value(depth)
		if p.bad {
			return nil
		}
		if p.build {
			a = append(a, v)
		}
		p.ws()
		switch p.peek() {
		case ',':
			p.i++
			p.ws()
		case ']':
			p.i++
			if !p.build {
				return nil
			}
			return a
		default:
			return p.fail()
		}
	}
}

func (p *parser) number() any {
	d, start := p.data, p.i
	i := p.i
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	default:
		return p.fail()
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return p.fail()
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return p.fail()
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	p.i = i
	if !p.build {
		return nil
	}
	return json.Number(d[start:i])
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// plainRun is the length of the prefix of s made of printable ASCII other
// than '"' and '\\': bytes that stand for themselves in a JSON string.
// Eight bytes at a time.
func plainRun(s []byte) int {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := binary.LittleEndian.Uint64(s[i:])
		q, bs := x^(lsb*'"'), x^(lsb*'\\')
		// The classic has-less-than and has-zero-byte tests: a byte < 0x20,
		// == '"' or == '\\' sets a high bit (a hit may set others above
		// it: the byte loop below finds the first); so does a byte >= 0x80.
		if ((x-lsb*0x20)&^x|(q-lsb)&^q|(bs-lsb)&^bs|x)&msb != 0 {
			break
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			break
		}
	}
	return i
}

// str reads a string whose opening quote is consumed; it returns the
// unescaped value when building (or when the caller wants a key).
func (p *parser) str() string {
	d := p.data
	start := p.i
	i := start
	// Fast path: no escapes; check UTF-8 validity as we go.
	clean := true
	for {
		i += plainRun(d[i:])
		if i >= len(d) {
			p.fail()
			return ""
		}
		c := d[i]
		if c == '"' {
			break
		}
		if c < 0x20 {
			p.fail()
			return ""
		}
		if c == '\\' {
			clean = false
			i++
			if i >= len(d) {
				p.fail()
				return ""
			}
			switch d[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if len(d)-i < 5 || hex4(d[i+1:i+5]) < 0 {
					p.fail()
					return ""
				}
				i += 5
			default:
				p.fail()
				return ""
			}
			continue
		}
		// c >= 0x80
		r, size := utf8.DecodeRune(d[i:])
		if r == utf8.RuneError && size == 1 {
			clean = false
		}
		i += size
	}
	p.i = i + 1
	if !p.build {
		return ""
	}
	if clean {
		return string(d[start:i])
	}
	return unquote(d[start:i])
}

// hex4 is the value of four hex digits, or -1.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c = c - '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// getu4 decodes \uXXXX at the start of s, or returns -1.
func getu4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	return hex4(s[2:6])
}

// unquote unescapes the inside of a checked string as encoding/json does.
func unquote(s []byte) string {
	b := make([]byte, 0, len(s)+2*utf8.UTFMax)
	for r := 0; r < len(s); {
		c := s[r]
		switch {
		case c == '\\':
			r++
			switch s[r] {
			case '"', '\\', '/', '\'':
				b = append(b, s[r])
				r++
			case 'b':
				b = append(b, '\b')
				r++
			case 'f':
				b = append(b, '\f')
				r++
			case 'n':
				b = append(b, '\n')
				r++
			case 'r':
				b = append(b, '\r')
				r++
			case 't':
				b = append(b, '\t')
				r++
			case 'u':
				r--
				rr := getu4(s[r:])
				r += 6
				if utf16.IsSurrogate(rr) {
					rr1 := getu4(s[r:])
					if dec := utf16.DecodeRune(rr, rr1); dec != unicode.ReplacementChar {
						r += 6
						b = utf8.AppendRune(b, dec)
						break
					}
					rr = unicode.ReplacementChar
				}
				b = utf8.AppendRune(b, rr)
			}
		case c < utf8.RuneSelf:
			b = append(b, c)
			r++
		default:
			rr, size := utf8.DecodeRune(s[r:])
			r += size
			b = utf8.AppendRune(b, rr)
		}
	}
	return string(b)
}

// AppendCompact appends src, a valid JSON document, to dst as
// encoding/json's Marshal writes a json.RawMessage (json.Compact with HTML
// escaping): whitespace outside strings dropped; <, >, &, U+2028 and
// U+2029 written \u003c, \u003e, \u0026, \u2028, \u2029. The bytes between
// those are copied in runs. src must have been found valid (Valid).
func AppendCompact(dst, src []byte) []byte {
	const hex = "0123456789abcdef"
	start, inStr := 0, false
	for i := 0; i < len(src); i++ {
		i += compactRun(src[i:])
		if i >= len(src) {
			break
		}
		c := src[i]
		if !compactSpecial[c] {
			continue
		}
		switch {
		case c == '"':
			inStr = !inStr
		case c == '\\':
			i++ // the escaped byte ('"' among them) is copied as it is
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if !inStr {
				dst = append(dst, src[start:i]...)
				start = i + 1
			}
		case c == '<' || c == '>' || c == '&':
			dst = append(dst, src[start:i]...)
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			start = i + 1
		case c == 0xE2 && i+2 < len(src) && src[i+1] == 0x80 && src[i+2]&^1 == 0xA8:
			dst = append(dst, src[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[src[i+2]&0xF])
			i += 2
			start = i + 1
		}
	}
	return append(dst, src[start:]...)
}

// compactRun is the length of the prefix of s that AppendCompact copies
// as it is without looking: no byte below 0x21 (whitespace), '"', '\\',
// '<', '>', '&' or at or above 0x80 (U+2028 starts with 0xE2). Eight bytes
// at a time, as plainRun.
func compactRun(s []byte) int {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := binary.LittleEndian.Uint64(s[i:])
		q, bs := x^(lsb*'"'), x^(lsb*'\\')
		lt, gt, amp := x^(lsb*'<'), x^(lsb*'>'), x^(lsb*'&')
		if ((x-lsb*0x21)&^x|(q-lsb)&^q|(bs-lsb)&^bs|(lt-lsb)&^lt|(gt-lsb)&^gt|(amp-lsb)&^amp|x)&msb != 0 {
			break
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c >= 0x80 || compactSpecial[c] {
			break
		}
	}
	return i
}

var compactSpecial = func() (t [256]bool) {
	for _, c := range []byte("\"\\ \t\n\r<>&\xe2") {
		t[c] = true
	}
	return t
}()
