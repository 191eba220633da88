package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/jsonscan"
)

// MaxParamsSize is the largest params document, in bytes, that
// [Validator.Validate] accepts. Larger params are refused before decoding.
const MaxParamsSize = 1 << 20

// maxErrorLines bounds the number of leaf errors a validation error lists.
const maxErrorLines = 10

// paramsURL names the parameters schema inside the compiler. A relative
// $ref resolves against it and then reaches the refusing loader.
const paramsURL = "skillbox:///manifest/parameters.json"

var printer = message.NewPrinter(language.English)

// Validator checks tool-call params against a compiled parameters schema.
// A Validator is safe for concurrent use.
type Validator struct {
	sch *jsonschema.Schema // nil: any JSON object is accepted
}

// Compile compiles a manifest's parameters schema.
//
// A nil or empty schema yields a Validator that accepts any JSON object.
// Without "$schema" the schema is read as draft 2020-12. References to
// anything outside the schema document (http, https, file, relative paths)
// are refused: skillbox never fetches schemas. Errors are of kind Invalid and
// start with "manifest.yaml: parameters: ".
func Compile(parameters map[string]any) (*Validator, error) {
	if len(parameters) == 0 {
		return &Validator{}, nil
	}
	// Round-trip through JSON: the map may come from YAML (ints, nested
	// maps) and the compiler wants plain JSON values with json.Number.
	raw, err := json.Marshal(parameters)
	if err != nil {
		return nil, errdefs.New(errdefs.Invalid, "manifest.yaml: parameters: not representable as JSON: %w", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, errdefs.New(errdefs.Invalid, "manifest.yaml: parameters: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseLoader(refusingLoader{})
	if err := c.AddResource(paramsURL, doc); err != nil {
		return nil, errdefs.New(errdefs.Invalid, "manifest.yaml: parameters: %w", err)
	}
	sch, err := c.Compile(paramsURL)
	if err != nil {
		return nil, compileError(err)
	}
	return &Validator{sch: sch}, nil
}

func compileError(err error) error {
	var sve *jsonschema.SchemaValidationError
	var ve *jsonschema.ValidationError
	if errors.As(err, &sve) && errors.As(sve.Err, &ve) {
		return &errdefs.Error{Kind: errdefs.Invalid, Msg: formatErrors("manifest.yaml: parameters", ve), Err: err}
	}
	var le *jsonschema.LoadURLError
	if errors.As(err, &le) {
		return &errdefs.Error{Kind: errdefs.Invalid, Msg: "manifest.yaml: parameters: $ref " + le.Err.Error(), Err: err}
	}
	msg := strings.ReplaceAll(err.Error(), paramsURL, "parameters")
	return &errdefs.Error{Kind: errdefs.Invalid, Msg: "manifest.yaml: parameters: " + oneLine(msg), Err: err}
}

// ErrRemoteRef is the cause of a compile error for a $ref that points
// outside the schema document.
var ErrRemoteRef = errors.New("remote and file references are disabled; put the schema under $defs and use \"#/$defs/...\"")

// refusingLoader refuses every URL: no network, no file system.
type refusingLoader struct{}

func (refusingLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("%q refused: %w", url, ErrRemoteRef)
}

// Validate checks params, a JSON document, against the schema.
//
// params must be a JSON object no larger than [MaxParamsSize]; empty input
// counts as {}. Numbers are decoded as json.Number so large integers keep
// their value. A failure is an Invalid error listing each failing leaf on its
// own line, e.g. `params: /address: expected string, got number`, sorted,
// at most 10 lines. params that are not UTF-8 are Invalid too: JSON text
// is UTF-8 (RFC 8259 §8.1), and the harness decodes it strictly, so
// encoding/json's replacement of bad bytes by U+FFFD would pass here a
// document that every backend then refuses.
func (v *Validator) Validate(params json.RawMessage) error {
	if len(params) > MaxParamsSize {
		return errdefs.New(errdefs.Invalid, "params: %d bytes exceeds the limit of %d bytes", len(params), MaxParamsSize)
	}
	if !utf8.Valid(params) {
		return errdefs.New(errdefs.Invalid, "params: not valid UTF-8 (first bad byte at offset %d); JSON text must be UTF-8", firstInvalidUTF8(params))
	}
	if len(bytes.TrimSpace(params)) == 0 {
		params = json.RawMessage("{}")
	}
	// One pass over the bytes; encoding/json (three passes) only for a
	// document that pass refuses, to say why.
	doc, ok := jsonscan.Decode(params)
	if !ok {
		var err error
		if doc, err = decodeSlow(params); err != nil {
			return err
		}
	}
	if _, ok := doc.(map[string]any); !ok {
		return errdefs.New(errdefs.Invalid, "params must be a JSON object, got %s", jsonType(doc))
	}
	if v == nil || v.sch == nil {
		return nil
	}
	err := v.sch.Validate(doc)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if errors.As(err, &ve) {
		return &errdefs.Error{Kind: errdefs.Invalid, Msg: formatErrors("params", ve), Err: err}
	}
	return errdefs.New(errdefs.Invalid, "params: %s", oneLine(err.Error()))
}

// firstInvalidUTF8 is the offset of the first byte of b that does not
// start a valid UTF-8 sequence.
func firstInvalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return len(b)
}

// decodeSlow decodes params with encoding/json, for its error message.
func decodeSlow(params []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(params))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, errdefs.New(errdefs.Invalid, "params: not valid JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errdefs.New(errdefs.Invalid, "params: not valid JSON: unexpected data after the top-level value")
	}
	return doc, nil
}

// formatErrors renders the leaves of a validation error tree, one per line,
// sorted and de-duplicated, each prefixed with prefix.
func formatErrors(prefix string, ve *jsonschema.ValidationError) string {
	var lines []string
	collect(ve, &lines)
	sort.Strings(lines)
	lines = dedupe(lines)
	if len(lines) == 0 {
		return prefix + ": invalid"
	}
	extra := 0
	if len(lines) > maxErrorLines {
		extra = len(lines) - maxErrorLines
		lines = lines[:maxErrorLines]
	}
	var sb strings.Builder
	for i, l := range lines {
		if i > 0 {
			sb.WriteByte('\n')
		}
		sb.WriteString(prefix)
		sb.WriteString(": ")
		sb.WriteString(l)
	}
	if extra > 0 {
		fmt.Fprintf(&sb, "\n%s: ... and %d more", prefix, extra)
	}
	return sb.String()
}

func collect(ve *jsonschema.ValidationError, out *[]string) {
	if len(ve.Causes) > 0 {
		for _, c := range ve.Causes {
			collect(c, out)
		}
		return
	}
	loc := pointer(ve.InstanceLocation)
	for _, msg := range leafMessages(ve.ErrorKind) {
		if loc != "" {
			msg = loc + ": " + msg
		}
		*out = append(*out, oneLine(msg))
	}
}

func leafMessages(k jsonschema.ErrorKind) []string {
	switch k := k.(type) {
	case *kind.Type:
		return []string{fmt.Sprintf("expected %s, got %s", strings.Join(k.Want, " or "), k.Got)}
	case *kind.Required:
		var out []string
		for _, m := range k.Missing {
			out = append(out, fmt.Sprintf("missing required property %q", m))
		}
		return out
	case *kind.AdditionalProperties:
		var out []string
		for _, p := range k.Properties {
			out = append(out, fmt.Sprintf("property %q is not allowed", p))
		}
		return out
	case *kind.Enum:
		want := make([]string, len(k.Want))
		for i, w := range k.Want {
			want[i] = compactJSON(w)
		}
		if len(want) == 1 {
			return []string{"value must be " + want[0]}
		}
		return []string{"value must be one of " + strings.Join(want, ", ")}
	case *kind.Const:
		return []string{"value must be " + compactJSON(k.Want)}
	case *kind.FalseSchema:
		return []string{"not allowed"}
	// The library's own messages print numbers as x/text does for
	// English: 1000000 as "1×10⁰⁶", 2000 as "2,000", 1e400 as "∞". These
	// print them as JSON writes them, in the library's wording.
	case *kind.Minimum:
		return bound(k, number(k.Got), number(k.Want))
	case *kind.Maximum:
		return bound(k, number(k.Got), number(k.Want))
	case *kind.ExclusiveMinimum:
		return bound(k, number(k.Got), number(k.Want))
	case *kind.ExclusiveMaximum:
		return bound(k, number(k.Got), number(k.Want))
	case *kind.MultipleOf:
		return bound(k, number(k.Got), number(k.Want))
	case *kind.MinLength:
		return bound(k, strconv.Itoa(k.Got), strconv.Itoa(k.Want))
	case *kind.MaxLength:
		return bound(k, strconv.Itoa(k.Got), strconv.Itoa(k.Want))
	case *kind.MinItems:
		return bound(k, strconv.Itoa(k.Got), strconv.Itoa(k.Want))
	case *kind.MaxItems:
		return bound(k, strconv.Itoa(k.Got), strconv.Itoa(k.Want))
	case *kind.MinProperties:
		return bound(k, strconv.Itoa(k.Got), strconv.Itoa(k.Want))
	case *kind.MaxProperties:
		return bound(k, strconv.Itoa(k.Got), strconv.Itoa(k.Want))
	default:
		return []string{k.LocalizedString(printer)}
	}
}

// bound is the message of k, a keyword that bounds a value: "maximum:
// got 11, want 10".
func bound(k jsonschema.ErrorKind, got, want string) []string {
	return []string{k.KeywordPath()[0] + ": got " + got + ", want " + want}
}

// number renders r, a JSON number, as JSON (and JavaScript) would: an
// integer in its digits, up to 128 bits of them (38 digits; a longer one
// is not turned into digits at all); otherwise, as the shortest
// decimal that reads back as the same float64, in plain digits from 1e-6
// to 1e21 and in e-notation beyond; and, for a number float64 cannot hold
// (1e400, -1e-400), in e-notation from its exact value.
func number(r *big.Rat) string {
	if r.IsInt() && r.Num().BitLen() <= 128 {
		return r.Num().String()
	}
	f, _ := r.Float64()
	if math.IsInf(f, 0) || f == 0 && r.Sign() != 0 {
		return new(big.Float).SetRat(r).Text('g', 17)
	}
	if a := math.Abs(f); a >= 1e21 || a < 1e-6 && a != 0 {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// pointer renders an instance location as a JSON pointer ("" for the root).
func pointer(toks []string) string {
	var sb strings.Builder
	for _, t := range toks {
		sb.WriteByte('/')
		t = strings.ReplaceAll(t, "~", "~0")
		sb.WriteString(strings.ReplaceAll(t, "/", "~1"))
	}
	return sb.String()
}

func dedupe(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

func oneLine(s string) string {
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number, float64:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	default:
		return fmt.Sprintf("%T", v)
	}
}
