package schema

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/errdefs"
)

var addressSchema = map[string]any{
	"type": "object",
	"properties": map[string]any{
		"address": map[string]any{"type": "string"},
		"style":   map[string]any{"type": "string", "enum": []any{"concise", "detailed"}},
		"count":   map[string]any{"type": "integer", "maximum": 10},
		"big":     map[string]any{"type": "integer"},
		"ratio":   map[string]any{"maximum": 1, "multipleOf": 0.5},
		"mode":    map[string]any{"const": "x"},
		"options": map[string]any{
			"type": "object",
			"properties": map[string]any{
				"depth": map[string]any{"type": "integer"},
				"tags":  map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
			},
			"additionalProperties": false,
		},
	},
	"required":             []any{"address"},
	"additionalProperties": false,
}

func TestValidate(t *testing.T) {
	v, err := Compile(addressSchema)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		params string
		want   string // "" means valid
	}{
		{"valid", `{"address":"0xabc","style":"concise","options":{"depth":2,"tags":["a"]}}`, ""},
		{"big int survives", `{"address":"a","big":123456789012345678901234567890}`, ""},
		{"missing required", `{}`, `params: missing required property "address"`},
		{"wrong type", `{"address":42}`, `params: /address: expected string, got number`},
		{"wrong type nested", `{"address":"a","options":{"depth":"deep"}}`, `params: /options/depth: expected integer, got string`},
		{"wrong type in array", `{"address":"a","options":{"tags":["x",3]}}`, `params: /options/tags/1: expected string, got number`},
		{"enum", `{"address":"a","style":"verbose"}`, `params: /style: value must be one of "concise", "detailed"`},
		{"maximum", `{"address":"a","count":11}`, `params: /count: maximum: got 11, want 10`},
		{"additional property", `{"address":"a","extra":1}`, `params: property "extra" is not allowed`},
		{"additional property nested", `{"address":"a","options":{"x":1}}`, `params: /options: property "x" is not allowed`},
		{"several errors sorted", `{"style":1,"extra":true}`,
			"params: /style: expected string, got number\n" +
				"params: missing required property \"address\"\n" +
				"params: property \"extra\" is not allowed"},
		{"const", `{"address":"a","mode":"y"}`, `params: /mode: value must be "x"`},
		{"array", `[1,2]`, `params must be a JSON object, got array`},
		{"string", `"x"`, `params must be a JSON object, got string`},
		{"null", `null`, `params must be a JSON object, got null`},
		{"not json", `{"address":`, `params: not valid JSON: unexpected EOF`},
		{"trailing data", `{"address":"a"} {}`, `params: not valid JSON: unexpected data after the top-level value`},
		{"oversized", `{"address":"` + strings.Repeat("a", MaxParamsSize) + `"}`, `params: 1048590 bytes exceeds the limit of 1048576 bytes`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := v.Validate(json.RawMessage(tt.params))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Errorf("kind %q, want invalid", errdefs.KindOf(err))
			}
			if err.Error() != tt.want {
				t.Errorf("error:\n%s\nwant:\n%s", err, tt.want)
			}
		})
	}
}

func TestValidateErrorCap(t *testing.T) {
	props := map[string]any{}
	var params []string
	for _, c := range "abcdefghijklmno" {
		props[string(c)] = map[string]any{"type": "string"}
		params = append(params, `"`+string(c)+`":1`)
	}
	v, err := Compile(map[string]any{"type": "object", "properties": props})
	if err != nil {
		t.Fatal(err)
	}
	err = v.Validate(json.RawMessage("{" + strings.Join(params, ",") + "}"))
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 11 || lines[10] != "params: ... and 5 more" || lines[0] != "params: /a: expected string, got number" {
		t.Errorf("got %d lines:\n%s", len(lines), err)
	}
}

// Params that are not UTF-8 are refused here, naming the byte, rather than
// accepted with U+FFFD in their place and then refused by the harness's
// strict decoding in the sandbox.
func TestValidateRefusesInvalidUTF8(t *testing.T) {
	v, err := Compile(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"{\"a\":\"x\xffy\"}", "{\"\xc3\":1}", "{\"a\":\"\xed\xa0\x80\"}"} {
		err := v.Validate(json.RawMessage(p))
		if errdefs.KindOf(err) != errdefs.Invalid || !strings.Contains(err.Error(), "not valid UTF-8 (first bad byte at offset ") {
			t.Errorf("Validate(%q) = %v, want invalid naming UTF-8", p, err)
		}
	}
	if err := v.Validate(json.RawMessage(`{"a":"\u00e9 é \ud83d\ude00 😀"}`)); err != nil {
		t.Errorf("valid UTF-8 refused: %v", err)
	}
}

func TestCompileEmptyAcceptsAnyObject(t *testing.T) {
	for _, s := range []map[string]any{nil, {}} {
		v, err := Compile(s)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{`{}`, `{"anything":[1,{"x":null}]}`, ``} {
			if err := v.Validate(json.RawMessage(p)); err != nil {
				t.Errorf("Validate(%q): %v", p, err)
			}
		}
		if err := v.Validate(json.RawMessage(`[]`)); err == nil {
			t.Errorf("array accepted")
		}
	}
}

func TestCompileYAMLValues(t *testing.T) {
	// Values as go.yaml.in/yaml/v3 decodes them: int, not float64.
	v, err := Compile(map[string]any{
		"type":       "object",
		"properties": map[string]any{"n": map[string]any{"type": "integer", "minimum": 1, "maximum": 5}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Validate(json.RawMessage(`{"n":6}`)); err == nil || err.Error() != "params: /n: maximum: got 6, want 5" {
		t.Errorf("got %v", err)
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name   string
		schema map[string]any
		want   string
	}{
		{"bad type", map[string]any{"type": "object", "properties": map[string]any{"a": map[string]any{"type": "strng"}}},
			"manifest.yaml: parameters: /properties/a/type: "},
		{"type not a string", map[string]any{"type": 5}, "manifest.yaml: parameters: /type: "},
		{"bad regexp", map[string]any{"type": "object", "properties": map[string]any{"a": map[string]any{"pattern": "(?=x)"}}},
			"manifest.yaml: parameters: "},
		{"remote ref", map[string]any{"$ref": "https://example.com/schema.json"},
			`manifest.yaml: parameters: $ref "https://example.com/schema.json" refused: remote and file references are disabled`},
		{"file ref", map[string]any{"$ref": "file:///etc/passwd"},
			`manifest.yaml: parameters: $ref "file:///etc/passwd" refused`},
		{"relative ref", map[string]any{"properties": map[string]any{"a": map[string]any{"$ref": "other.json#/x"}}},
			`manifest.yaml: parameters: $ref "skillbox:///manifest/other.json" refused`},
		{"remote metaschema", map[string]any{"$schema": "https://example.com/meta"},
			`manifest.yaml: parameters: $ref "https://example.com/meta" refused`},
		{"dangling local ref", map[string]any{"$ref": "#/$defs/missing"}, "manifest.yaml: parameters: "},
		{"not json", map[string]any{"x": func() {}}, "manifest.yaml: parameters: not representable as JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(tt.schema)
			if err == nil {
				t.Fatal("compiled")
			}
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Errorf("kind %q, want invalid", errdefs.KindOf(err))
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error %q, want prefix %q", err, tt.want)
			}
			t.Log(err)
		})
	}
}

func TestCompileLocalRefAndOlderDraft(t *testing.T) {
	v, err := Compile(map[string]any{
		"$schema":     "http://json-schema.org/draft-07/schema#",
		"type":        "object",
		"properties":  map[string]any{"a": map[string]any{"$ref": "#/definitions/s"}},
		"definitions": map[string]any{"s": map[string]any{"type": "string"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Validate(json.RawMessage(`{"a":1}`)); err == nil || err.Error() != "params: /a: expected string, got number" {
		t.Errorf("got %v", err)
	}
}

func FuzzValidate(f *testing.F) {
	f.Add(`{"address":"a"}`)
	f.Add(`{"address":1,"options":{"depth":"x","y":2}}`)
	f.Add(`[]`)
	f.Add(`{"big":1e400}`)
	f.Add(`{"ratio":1e999}`)
	f.Add(``)
	v, err := Compile(addressSchema)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, params string) {
		err := v.Validate(json.RawMessage(params))
		if err != nil && !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("error of kind %q: %v", errdefs.KindOf(err), err)
		}
	})
}

// TestBoundsShowNumbersAsWritten: a bound's message shows numbers as JSON
// writes them, not as the library's English printer does ("1×10⁰⁶",
// "2,000", "∞" for 1e400, "0" for -1e-400).
func TestBoundsShowNumbersAsWritten(t *testing.T) {
	v, err := Compile(map[string]any{"type": "object", "properties": map[string]any{
		"max": map[string]any{"maximum": 50}, "min": map[string]any{"minimum": 0.5}, "xmax": map[string]any{"exclusiveMaximum": 1000},
		"mul": map[string]any{"multipleOf": 0.01}, "s": map[string]any{"minLength": 2000}, "a": map[string]any{"minItems": 5000},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for params, want := range map[string]string{
		`{"max":1000000}`:                        "params: /max: maximum: got 1000000, want 50",
		`{"max":123456789012345678901234567890}`: "params: /max: maximum: got 123456789012345678901234567890, want 50",
		`{"max":50.25}`:                          "params: /max: maximum: got 50.25, want 50",
		`{"max":2e21}`:                           "params: /max: maximum: got 2000000000000000000000, want 50",
		`{"max":2.5e21}`:                         "params: /max: maximum: got 2500000000000000000000, want 50",
		`{"max":1e50}`:                           "params: /max: maximum: got 1e+50, want 50",
		`{"min":-1e-300}`:                        "params: /min: minimum: got -1e-300, want 0.5",
		`{"min":1e-7}`:                           "params: /min: minimum: got 1e-07, want 0.5",
		`{"xmax":1234567.5}`:                     "params: /xmax: exclusiveMaximum: got 1234567.5, want 1000",
		`{"mul":0.001}`:                          "params: /mul: multipleOf: got 0.001, want 0.01",
		`{"s":"abc"}`:                            "params: /s: minLength: got 3, want 2000",
		`{"a":[1]}`:                              "params: /a: minItems: got 1, want 5000",
	} {
		if err := v.Validate(json.RawMessage(params)); err == nil || err.Error() != want {
			t.Errorf("%s: %v, want %q", params, err, want)
		}
	}
}

// Numbers the skill's Python would not read as written are refused, each
// named with its path, whether or not the schema looks at them: before,
// a float beyond float64 reached the skill as inf (or 0.0), an integer
// over 4300 digits failed in the harness, and the validator crashed on
// 1e2000000 under a bound (a nil big.Rat) and spent ~20 ms per 1e999999.
// So are floats written with more than 4300 characters: "1." and a
// million zeros, 1.0, crashed the validator the same way.
func TestNumbersOutOfRange(t *testing.T) {
	bounded, err := Compile(map[string]any{"type": "object", "properties": map[string]any{
		"x": map[string]any{"maximum": 50}, "xs": map[string]any{"type": "array", "items": map[string]any{"type": "integer"}}}})
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("7", 4301)
	for _, v := range []*Validator{bounded, {}} {
		for params, want := range map[string]string{
			`{"x":1e2000000}`:                              "params: /x: 1e2000000 is out of range: beyond a 64-bit float's largest, 1.7976931348623157e+308; Python reads it as inf",
			`{"x":-1.8e308}`:                               "params: /x: -1.8e308 is out of range: beyond a 64-bit float's largest, 1.7976931348623157e+308; Python reads it as -inf",
			`{"x":1E-400}`:                                 "params: /x: 1E-400 is out of range: not zero, but below a 64-bit float's smallest, 5e-324; Python reads it as 0.0",
			`{"x":{"y":[0,2e-324]}}`:                       "params: /x/y/1: 2e-324 is out of range: not zero, but below a 64-bit float's smallest, 5e-324; Python reads it as 0.0",
			`{"x":` + long + `}`:                           "params: /x: an integer of 4301 digits is out of range: Python reads integers of at most 4300",
			`{"x":` + long[:400] + `.5}`:                   "params: /x: 77777777777777777777…77777777777777777.5 is out of range: beyond a 64-bit float's largest, 1.7976931348623157e+308; Python reads it as inf",
			`{"x":` + long + `.5}`:                         "params: /x: a number written with 4303 characters is too long: skillbox reads numbers of at most 4300",
			`{"x":1.` + strings.Repeat("0", 1000001) + `}`: "params: /x: a number written with 1000003 characters is too long: skillbox reads numbers of at most 4300",
			`{"x":1e99999999999}`:                          "params: /x: 1e99999999999 is out of range: beyond a 64-bit float's largest, 1.7976931348623157e+308; Python reads it as inf",
			`{"x":-1e-99999999999}`:                        "params: /x: -1e-99999999999 is out of range: not zero, but below a 64-bit float's smallest, 5e-324; Python reads it as 0.0",
			`{"xs":[1,1e999999,2,1e999999]}`: "params: /xs/1: 1e999999 is out of range: beyond a 64-bit float's largest, 1.7976931348623157e+308; Python reads it as inf\n" +
				"params: /xs/3: 1e999999 is out of range: beyond a 64-bit float's largest, 1.7976931348623157e+308; Python reads it as inf",
		} {
			err := v.Validate(json.RawMessage(params))
			if err == nil || err.Error() != want || errdefs.KindOf(err) != errdefs.Invalid {
				t.Errorf("%.60s: %v, want %q", params, err, want)
			}
		}
		// At the edges, and zero however written, the numbers pass.
		// Python reads "1" and 900 zeros "e-900" as 1.0 (strconv.ParseFloat
		// says 1e-101).
		for _, params := range []string{`{"x":1.7976931348623157e308}`, `{"x":5e-324}`, `{"x":3e-324}`, `{"x":0e-999999}`, `{"x":0e99999999999}`, `{"x":-0.0}`,
			`{"x":1` + strings.Repeat("0", 900) + `e-900}`, `{"x":1` + strings.Repeat("0", 4000) + `e-4000}`, `{"x":` + long[1:] + `}`, `{"xs":[` + long[1:] + `]}`} {
			if err := v.Validate(json.RawMessage(params)); err != nil && strings.Contains(err.Error(), "out of range") {
				t.Errorf("%.60s: %v", params, err)
			}
		}
	}
}

// A result is checked against an outputs schema as params are, named
// "result" in the messages, and without the params' size limit (the call's
// output limit bounds it): before, a result over 1 MiB failed its outputs
// schema as "params: … exceeds the limit".
func TestValidateResult(t *testing.T) {
	v, err := Compile(map[string]any{"type": "object", "properties": map[string]any{"n": map[string]any{"type": "integer"}, "s": map[string]any{"type": "string"}}})
	if err != nil {
		t.Fatal(err)
	}
	big := `{"n":1,"s":"` + strings.Repeat("x", 2*MaxParamsSize) + `"}`
	if err := v.ValidateResult(json.RawMessage(big)); err != nil {
		t.Errorf("a 2 MiB result: %v", err)
	}
	for result, want := range map[string]string{
		`{"n":"one"}`: "result: /n: expected integer, got string",
		`[1]`:         "result must be a JSON object, got array",
		`{"n":1e400}`: "result: /n: 1e400 is out of range: beyond a 64-bit float's largest, 1.7976931348623157e+308; Python reads it as inf",
		`{"n":1`:      "result: not valid JSON: unexpected EOF",
	} {
		if err := v.ValidateResult(json.RawMessage(result)); err == nil || err.Error() != want {
			t.Errorf("%s: %v, want %q", result, err, want)
		}
	}
}
