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
	if len(bytes.TrimSpace(params)) == 0 {
		params = json.RawMessage("{}")
	}
	return v.check("params", params)
}

// ValidateResult checks result, a skill's JSON result, against the schema
// (a manifest's outputs schema) as Validate checks params, with messages
// that start with "result". It has no size limit of its own: the call's
// output limit bounds a result.
func (v *Validator) ValidateResult(result json.RawMessage) error {
	return v.check("result", result)
}

// check validates data, a JSON object; what is named names it in messages.
func (v *Validator) check(what string, data []byte) error {
	if !utf8.Valid(data) {
		return errdefs.New(errdefs.Invalid, "%s: not valid UTF-8 (first bad byte at offset %d); JSON text must be UTF-8", what, firstInvalidUTF8(data))
	}
	// One pass over the bytes; encoding/json (three passes) only for a
	// document that pass refuses, to say why.
	doc, ok := jsonscan.Decode(data)
	if !ok {
		var err error
		if doc, err = decodeSlow(what, data); err != nil {
			return err
		}
	}
	if _, ok := doc.(map[string]any); !ok {
		return errdefs.New(errdefs.Invalid, "%s must be a JSON object, got %s", what, jsonType(doc))
	}
	if lines := outOfRange(doc); len(lines) > 0 {
		return errdefs.New(errdefs.Invalid, "%s", formatLines(what, lines))
	}
	if v == nil || v.sch == nil {
		return nil
	}
	err := validate(v.sch, doc)
	if own := (*errdefs.Error)(nil); err == nil || errors.As(err, &own) {
		return err // valid, or the validator panicked
	}
	var ve *jsonschema.ValidationError
	if errors.As(err, &ve) {
		return &errdefs.Error{Kind: errdefs.Invalid, Msg: formatErrors(what, ve), Err: err}
	}
	return errdefs.New(errdefs.Invalid, "%s: %s", what, oneLine(err.Error()))
}

// validate runs the validator; a panic of its becomes an Internal error,
// so that no document can take the process down with it (numberRange
// keeps out the numbers known to make it panic).
func validate(sch *jsonschema.Schema, doc any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errdefs.New(errdefs.Internal, "the schema validator failed: %v", r)
		}
	}()
	return sch.Validate(doc)
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

// decodeSlow decodes data with encoding/json, for its error message.
func decodeSlow(what string, data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, errdefs.New(errdefs.Invalid, "%s: not valid JSON: %w", what, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errdefs.New(errdefs.Invalid, "%s: not valid JSON: unexpected data after the top-level value", what)
	}
	return doc, nil
}

// formatErrors renders the leaves of a validation error tree, one per line,
// sorted and de-duplicated, each prefixed with prefix.
func formatErrors(prefix string, ve *jsonschema.ValidationError) string {
	var lines []string
	collect(ve, &lines)
	return formatLines(prefix, lines)
}

// formatLines renders lines sorted and de-duplicated, at most
// maxErrorLines of them, each prefixed with prefix.
func formatLines(prefix string, lines []string) string {
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

// Python's limits on what it reads from JSON, which every backend's
// harness decodes params with.
const (
	// maxIntDigits is the longest integer Python converts from text:
	// sys.int_info.default_max_str_digits (3.11, and 3.8 to 3.10 since
	// their 2022 security releases); json.loads refuses a longer one.
	maxIntDigits = 4300
	// minFloat is the smallest positive float64 (a subnormal).
	minFloat = "5e-324"
	// maxNumberLen bounds a number written with a fraction or an
	// exponent: Python reads any, but the validator's exact arithmetic
	// costs with the exponent its digits make (1. and a million zeros is
	// 10^-1000000 times an integer of a million digits, which it cannot
	// hold at all).
	maxNumberLen = 4300
)

// outOfRange lists the numbers in doc that the skill's Python would not
// read as written, one line each ("/path: why"), in no order: an integer
// longer than maxIntDigits (json.loads refuses it), and a number written
// with a fraction or an exponent (a float to Python) beyond a float64's
// range (Python reads inf) or nonzero but below its smallest (Python reads
// 0.0). Refusing them here says so, where the harness would fail or the
// skill would get another value; it also keeps them from the schema
// validator, whose exact arithmetic costs milliseconds per number at such
// exponents (20 ms for 1e999999) and fails beyond ±1e6.
func outOfRange(doc any) []string {
	var lines []string
	var path []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				path = append(path, k)
				walk(e)
				path = path[:len(path)-1]
			}
		case []any:
			for i, e := range v {
				path = append(path, strconv.Itoa(i))
				walk(e)
				path = path[:len(path)-1]
			}
		case json.Number:
			if why := numberRange(string(v)); why != "" {
				loc := pointer(path)
				if loc == "" {
					loc = "/"
				}
				lines = append(lines, loc+": "+why)
			}
		}
	}
	walk(doc)
	return lines
}

// numberRange says why s, a JSON number, would not reach the skill as
// written, or "".
func numberRange(s string) string {
	mantissa, exp, hasExp := strings.Cut(strings.ToLower(s), "e")
	if !hasExp && !strings.Contains(s, ".") {
		if digits := len(strings.TrimPrefix(s, "-")); digits > maxIntDigits {
			return fmt.Sprintf("an integer of %d digits is out of range: Python reads integers of at most %d", digits, maxIntDigits)
		}
		return ""
	}
	if len(s) > maxNumberLen {
		return fmt.Sprintf("a number written with %d characters is too long: skillbox reads numbers of at most %d", len(s), maxNumberLen)
	}
	if !strings.ContainsAny(mantissa, "123456789") {
		return "" // zero, however written
	}
	// big.Float rounds as Python's float() does (to nearest, ties to
	// even); strconv.ParseFloat misreads long mantissas with exponents
	// ("1" and 900 zeros "e-900" is 1e-101 to it).
	over := strings.HasPrefix(strings.TrimPrefix(exp, "+"), "-") == false
	if f, _, err := big.ParseFloat(s, 10, 64, big.ToNearestEven); err == nil {
		v, _ := f.Float64()
		if !math.IsInf(v, 0) && v != 0 {
			return ""
		}
		over = math.IsInf(v, 0)
	} // else an exponent beyond big.Float's: its sign says which way
	if over {
		inf := "inf"
		if strings.HasPrefix(s, "-") {
			inf = "-inf"
		}
		return fmt.Sprintf("%s is out of range: beyond a 64-bit float's largest, %g; Python reads it as %s",
			shortNumber(s), math.MaxFloat64, inf)
	}
	return fmt.Sprintf("%s is out of range: not zero, but below a 64-bit float's smallest, %s; Python reads it as 0.0",
		shortNumber(s), minFloat)
}

// shortNumber is s, a JSON number, cut to at most 40 characters.
func shortNumber(s string) string {
	if len(s) <= 40 {
		return s
	}
	return s[:20] + "…" + s[len(s)-19:]
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
