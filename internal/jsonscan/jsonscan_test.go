package jsonscan

import (
	"bytes"
	"encoding/json"
	"io"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// reference is what encoding/json makes of data: json.Decoder with
// UseNumber, one value and nothing after it.
func reference(data []byte) (any, bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false
	}
	return v, true
}

var corpus = []string{
	`{}`, `[]`, `""`, `0`, `-0`, `1.5e10`, `-1.0E-2`, `1e+2`, `true`, `false`, `null`,
	` {"a" : [1, 2 ,{"b":null}] } `, "\t\r\n{}\n", `{"a":1,"a":2}`, `{"":""}`,
	`"\u00e9\n\t\"\\\/\b\f\r"`, `"\ud83d\ude00"`, `"\ud83d"`, `"\ud83dx"`, `"\ud83d\u0041"`, `"\ude00\ud83d"`,
	`"\uD83D\uDE00"`, "\"\xff\xfe\"", "\"é—日本\"", "\"\xed\xa0\x80\"", "\"a\xc3\"", `"<>&` + "\u2028" + `"`,
	`{"a":"` + strings.Repeat("abcdefghij", 100) + `"}`,
	`[1,2,3,[4,[5,[6]]]]`, `{"n":123456789012345678901234567890}`,
	// invalid
	``, ` `, `{`, `}`, `{"a"}`, `{"a":}`, `{"a":1,}`, `[1,]`, `[,1]`, `01`, `1.`, `.1`, `1e`, `1e+`, `-`, `+1`,
	`tru`, `truee`, `nul`, `"abc`, `"\x"`, `"\u12"`, `"\u12g4"`, "\"a\x01\"", "\"a\tb\"", `{} {}`, `{}x`, `[1 2]`,
	`{"a" 1}`, `{1:2}`, `'a'`, `NaN`, `Infinity`, `[true false]`, "\ufeff{}", `"\'"`, `{"a":1}}`, `[[]`,
}

func check(t *testing.T, doc []byte) {
	t.Helper()
	want, wantOK := reference(doc)
	got, ok := Decode(doc)
	if ok != wantOK {
		t.Fatalf("Decode(%q) ok %v, encoding/json %v", doc, ok, wantOK)
	}
	if ok && !reflect.DeepEqual(got, want) {
		t.Fatalf("Decode(%q) = %#v, encoding/json %#v", doc, got, want)
	}
	if _, ok := AppendCompact(nil, doc); ok != json.Valid(doc) {
		t.Fatalf("AppendCompact(%q) ok %v, json.Valid %v", doc, ok, !ok)
	}
	if v := Valid(doc); v != json.Valid(doc) {
		t.Fatalf("Valid(%q) = %v, json.Valid %v", doc, v, !v)
	}
	if m, ok := Members(doc); ok != (wantOK && reflect.TypeOf(want) == reflect.TypeOf(map[string]any{})) {
		t.Fatalf("Members(%q) ok %v", doc, ok)
	} else if ok {
		w := want.(map[string]any)
		seen := map[string]bool{}
		for _, f := range m {
			seen[f.Key] = true
			var v any
			d := json.NewDecoder(bytes.NewReader(doc[f.Start:f.End]))
			d.UseNumber()
			if err := d.Decode(&v); err != nil {
				t.Fatalf("Members(%q): %q: %v", doc, f.Key, err)
			}
			if _, in := w[f.Key]; !in {
				t.Fatalf("Members(%q): key %q not in %v", doc, f.Key, w)
			}
		}
		if len(seen) != len(w) {
			t.Fatalf("Members(%q): %d keys, want %d", doc, len(seen), len(w))
		}
	}
}

func TestCorpus(t *testing.T) {
	for _, c := range corpus {
		check(t, []byte(c))
	}
}

func TestDepth(t *testing.T) {
	for _, n := range []int{100, 9999, 10000, 10001, 20000} {
		for _, doc := range [][]byte{
			[]byte(strings.Repeat("[", n) + strings.Repeat("]", n)),
			[]byte(strings.Repeat(`{"":`, n) + `""` + strings.Repeat("}", n)),
		} {
			check(t, doc)
		}
	}
}

// TestMutations compares with encoding/json on random edits of valid
// documents: bytes dropped, repeated, swapped for JSON's special ones.
func TestMutations(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	special := []byte("{}[]\",:\\/0123456789.eE+-tfnul \t\r\nabc\x00\x1f\x7f\x80\xbf\xc3\xed\xf0\xff")
	n := 20000
	if testing.Short() {
		n = 2000
	}
	for range n {
		doc := []byte(corpus[r.IntN(31)])
		for range 1 + r.IntN(3) {
			if len(doc) == 0 {
				break
			}
			i := r.IntN(len(doc))
			switch r.IntN(3) {
			case 0:
				doc = append(doc[:i:i], doc[i+1:]...)
			case 1:
				doc = append(doc[:i+1:i+1], doc[i:]...)
			default:
				doc[i] = special[r.IntN(len(special))]
			}
		}
		check(t, doc)
	}
}

func FuzzDecode(f *testing.F) {
	for _, c := range corpus {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, doc []byte) { check(t, doc) })
}

func benchDoc() []byte {
	return []byte(`{"data":"` + strings.Repeat("abcdefghij", 1e5) + `","n":[1,2,3]}`)
}

func BenchmarkDecode1MB(b *testing.B) {
	doc := benchDoc()
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if _, ok := Decode(doc); !ok {
			b.Fatal("invalid")
		}
	}
}

func BenchmarkEncodingJSONDecode1MB(b *testing.B) {
	doc := benchDoc()
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if _, ok := reference(doc); !ok {
			b.Fatal("invalid")
		}
	}
}

func TestAppendCompact(t *testing.T) {
	docs := append([]string{" { \"a\" : \"<b>&\u2028\u2029 \\\" \\\\\" , \"c\" : [ 1 , \"\\u003c\" ] }\n"}, corpus...)
	r := rand.New(rand.NewPCG(3, 4))
	special := []byte(" \t\r\n  <>&\xe2\x80\xa8\xa9\"\\ab1")
	var bases []string
	for _, d := range docs {
		if json.Valid([]byte(d)) {
			bases = append(bases, d)
		}
	}
	for range 20000 {
		doc := []byte(bases[r.IntN(len(bases))])
		if len(doc) > 0 {
			for range 1 + r.IntN(3) {
				i := r.IntN(len(doc))
				doc = append(doc[:i:i], append([]byte{special[r.IntN(len(special))]}, doc[i:]...)...)
			}
		}
		docs = append(docs, string(doc))
	}
	n := 0
	for _, d := range docs {
		doc := []byte(d)
		got, ok := AppendCompact([]byte("x"), doc)
		if !json.Valid(doc) {
			if ok || string(got) != "x" {
				t.Fatalf("AppendCompact(%q) = %q, %v; json.Valid false", doc, got, ok)
			}
			continue
		}
		n++
		want, err := json.Marshal(json.RawMessage(doc))
		if err != nil {
			t.Fatal(err)
		}
		if !ok || string(got) != "x"+string(want) {
			t.Fatalf("AppendCompact(%q) = %q, %v; json.Marshal %q", doc, got, ok, want)
		}
	}
	if n < 2000 {
		t.Fatalf("only %d valid documents", n)
	}
}
