// Package strictjson decodes the JSON files skillbox reads strictly, the
// operator's trust store and lockfiles: one JSON value, member names matched
// exactly (case included), no unknown member, no member twice, no trailing
// data, valid UTF-8. encoding/json would match names in any case and let the
// last of two equal names win, so a hand-edited file could mean something
// other than what a reviewer reads in it.
//
// Errors name the line, and the place in the document as a path such as
// skills["a/b"].grants.memory, as the policy file's errors do.
package strictjson

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Decode decodes data, one JSON value, into v.
func Decode(data []byte, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return errors.New("empty file")
	}
	// The decoder refuses duplicate names and invalid UTF-8 by default;
	// Unmarshal matches names case-sensitively by default.
	dec := jsontext.NewDecoder(bytes.NewReader(data))
	if err := json.UnmarshalDecode(dec, v, json.RejectUnknownMembers(true)); err != nil {
		return describe(data, err)
	}
	if _, err := dec.ReadToken(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

// describe turns a decoding error into one that names the line and place.
func describe(data []byte, err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("the file ends too early (truncated?)")
	}
	var se *jsontext.SyntacticError
	var me *json.SemanticError
	switch {
	case errors.As(err, &se) && errors.Is(se.Err, jsontext.ErrDuplicateName):
		return fmt.Errorf("line %d: %sduplicate key %q", lineAt(data, se.ByteOffset), at(se.JSONPointer.Parent()), se.JSONPointer.LastToken())
	case errors.As(err, &se):
		return fmt.Errorf("line %d: %s%v", lineAt(data, se.ByteOffset), at(se.JSONPointer), se.Err)
	case errors.As(err, &me) && errors.Is(me.Err, json.ErrUnknownName):
		name := me.JSONPointer.LastToken()
		hint := ""
		if name != strings.ToLower(name) {
			hint = " (names are matched exactly, case included)"
		}
		return fmt.Errorf("line %d: %sunknown field %q%s", lineAt(data, me.ByteOffset), at(me.JSONPointer.Parent()), name, hint)
	case errors.As(err, &me) && me.Err != nil:
		return fmt.Errorf("line %d: %s: %v", lineAt(data, me.ByteOffset), path(me.JSONPointer), me.Err)
	case errors.As(err, &me) && me.GoType != nil:
		return fmt.Errorf("line %d: %s must be %s, not %s", lineAt(data, me.ByteOffset), path(me.JSONPointer), typeName(me.GoType), kindName(me.JSONKind))
	case errors.As(err, &me):
		return fmt.Errorf("line %d: %s: %v", lineAt(data, me.ByteOffset), path(me.JSONPointer), err)
	}
	return err
}

// at is "PATH: ", or "" at the top level (the policy file's errors name
// their place the same way).
func at(p jsontext.Pointer) string {
	if p == "" {
		return ""
	}
	return path(p) + ": "
}

// path writes a JSON pointer as skills["a/b"].grants.memory or
// skills[0].id.
func path(p jsontext.Pointer) string {
	if p == "" {
		return "the document"
	}
	var b strings.Builder
	for tok := range p.Tokens() {
		switch {
		case isIndex(tok):
			b.WriteString("[" + tok + "]")
		case isName(tok):
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(tok)
		default:
			b.WriteString("[" + strconv.Quote(tok) + "]")
		}
	}
	return b.String()
}

func isIndex(tok string) bool {
	_, err := strconv.ParseUint(tok, 10, 32)
	return err == nil
}

func isName(tok string) bool {
	if tok == "" {
		return false
	}
	for _, r := range tok {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func typeName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.String()
}

func kindName(k jsontext.Kind) string {
	switch k {
	case '"':
		return "string"
	case '0':
		return "number"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "another kind of value"
}

// lineAt is the 1-based line of byte offset off in data.
func lineAt(data []byte, off int64) int {
	off = max(0, min(off, int64(len(data))))
	return 1 + bytes.Count(data[:off], []byte{'\n'})
}
