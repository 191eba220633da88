// Package jsonscan reads a call's params and result
// in one pass of github.com/go-json-experiment/json/jsontext, the Go
// team's JSON tokenizer (the basis of encoding/json/v2), rather than
// encoding/json's byte-at-a-time scanner, run once to find a value's end,
// again to check it and again to decode it. It is a thin layer: the
// parsing is jsontext's.
//
// It accepts exactly the documents encoding/json accepts and decodes them
// to the same values (json.Decoder with UseNumber: map[string]any, []any,
// json.Number, string, bool, nil; invalid UTF-8 and lone surrogates become
// U+FFFD; a repeated key keeps its last value): jsontext is told to allow
// duplicate names and invalid UTF-8, as encoding/json does, and both
// refuse nesting deeper than 10000. It reports only whether a document is
// valid, never why: a caller that needs the error's text asks
// encoding/json for it, on the slow path of a bad document.
package jsonscan

import (
	"bytes"
	"encoding/json"
	"io"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// v1 makes jsontext accept what encoding/json accepts: repeated names
// (the last one wins when decoding) and invalid UTF-8 in strings
// (decoded as U+FFFD).
var v1 = []jsontext.Options{
	jsontext.AllowDuplicateNames(true),
	jsontext.AllowInvalidUTF8(true),
}

// compactOpts makes jsontext.AppendFormat write what json.Marshal writes
// for a json.RawMessage: no whitespace, strings as they are written
// except for <, >, &, U+2028 and U+2029, escaped.
var compactOpts = append([]jsontext.Options{
	jsontext.PreserveRawStrings(true),
	jsontext.EscapeForHTML(true),
	jsontext.EscapeForJS(true),
}, v1...)

func newDecoder(data []byte) *jsontext.Decoder {
	// A bytes.Buffer is read in place, not copied.
	return jsontext.NewDecoder(bytes.NewBuffer(data), v1...)
}

// atEOF reports whether d has nothing but whitespace left.
func atEOF(d *jsontext.Decoder) bool {
	_, err := d.ReadToken()
	return err == io.EOF
}

// Decode parses data, one JSON value with optional whitespace around it,
// into the value json.Decoder with UseNumber would give. ok is false when
// data is not valid JSON.
func Decode(data []byte) (v any, ok bool) {
	d := newDecoder(data)
	v, err := build(d)
	if err != nil || !atEOF(d) {
		return nil, false
	}
	return v, true
}

// build reads the next value from d into map[string]any, []any,
// json.Number, string, bool or nil.
func build(d *jsontext.Decoder) (any, error) {
	switch d.PeekKind() {
	case '{':
		if _, err := d.ReadToken(); err != nil {
			return nil, err
		}
		m := map[string]any{}
		for d.PeekKind() != '}' {
			tok, err := d.ReadToken()
			if err != nil {
				return nil, err
			}
			name := tok.String() // before the next read voids tok
			v, err := build(d)
			if err != nil {
				return nil, err
			}
			m[name] = v
		}
		_, err := d.ReadToken()
		return m, err
	case '[':
		if _, err := d.ReadToken(); err != nil {
			return nil, err
		}
		a := []any{}
		for d.PeekKind() != ']' {
			v, err := build(d)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		_, err := d.ReadToken()
		return a, err
	case '0':
		raw, err := d.ReadValue()
		return json.Number(raw), err
	case '"':
		raw, err := d.ReadValue()
		if err != nil {
			return nil, err
		}
		return unquote(raw), nil
	case 't', 'f':
		tok, err := d.ReadToken()
		if err != nil {
			return nil, err
		}
		return tok.Bool(), nil
	default: // 'n', or an error that ReadToken reports
		_, err := d.ReadToken()
		return nil, err
	}
}

// unquote is the string a JSON string token raw (quotes included,
// checked by the decoder) stands for, as jsontext.Token.String gives it.
// Without escapes and with valid UTF-8 that is the bytes between the
// quotes, copied once: Token.String would scan them again first, which
// for a megabyte of params costs as much as the decoder's own pass.
func unquote(raw []byte) string {
	body := raw[1 : len(raw)-1]
	if bytes.IndexByte(body, '\\') < 0 && utf8.Valid(body) {
		return string(body)
	}
	b, _ := jsontext.AppendUnquote(nil, raw) // invalid UTF-8 becomes U+FFFD
	return string(b)
}

// Valid reports whether data is one valid JSON value with optional
// whitespace around it, as json.Valid does.
func Valid(data []byte) bool {
	return jsontext.Value(data).IsValid(v1...)
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
	d := newDecoder(data)
	if tok, err := d.ReadToken(); err != nil || tok.Kind() != '{' {
		return nil, false
	}
	for d.PeekKind() != '}' {
		tok, err := d.ReadToken()
		if err != nil {
			return nil, false
		}
		name := tok.String() // before the next read voids tok
		val, err := d.ReadValue()
		if err != nil {
			return nil, false
		}
		end := int(d.InputOffset())
		m = append(m, Member{Key: name, Start: end - len(val), End: end})
	}
	if _, err := d.ReadToken(); err != nil || !atEOF(d) {
		return nil, false
	}
	return m, true
}

// AppendCompact appends src to dst as json.Marshal(json.RawMessage(src))
// writes it: whitespace outside strings dropped, <, >, &, U+2028 and
// U+2029 escaped as \u003c and so on, everything else as it is. It checks
// src as it goes: ok is false, and dst returned as it was, when src is not
// valid JSON (json.Valid). jsontext would write invalid UTF-8 as U+FFFD,
// which json.Marshal does not; such a document goes through encoding/json.
func AppendCompact(dst, src []byte) (out []byte, ok bool) {
	if utf8.Valid(src) {
		out, err := jsontext.AppendFormat(dst, src, compactOpts...)
		if err != nil {
			return dst, false
		}
		return out, true
	}
	b, err := json.Marshal(json.RawMessage(src))
	if err != nil {
		return dst, false
	}
	return append(dst, b...), true
}
