package schema

import (
	"strings"
	"testing"
)

// BenchmarkValidate1MB validates 1 MB of params (one string property)
// against a schema, with the one-pass decoder ("scan") and with the
// encoding/json decoder it replaced ("encoding-json"), alternated in one
// run (issue 17 target 2).
func BenchmarkValidate1MB(b *testing.B) {
	v, err := Compile(map[string]any{"type": "object", "properties": map[string]any{
		"data": map[string]any{"type": "string"}, "n": map[string]any{"type": "integer"}},
		"additionalProperties": false})
	if err != nil {
		b.Fatal(err)
	}
	params := []byte(`{"data":"` + strings.Repeat("abcdefghij", 1e5) + `"}`)
	b.Run("scan", func(b *testing.B) {
		b.SetBytes(int64(len(params)))
		for b.Loop() {
			if err := v.Validate(params); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(params)))
		for b.Loop() {
			doc, err := decodeSlow("params", params)
			if err != nil {
				b.Fatal(err)
			}
			if err := v.sch.Validate(doc); err != nil {
				b.Fatal(err)
			}
		}
	})
}
