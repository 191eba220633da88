package schema

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skillbox-dev/skillbox/errdefs"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/golden")

func loadTool(t *testing.T) Tool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "tool.json"))
	if err != nil {
		t.Fatal(err)
	}
	var tool Tool
	if err := json.Unmarshal(b, &tool); err != nil {
		t.Fatal(err)
	}
	return tool
}

func TestExportGolden(t *testing.T) {
	tool := loadTool(t)
	for _, format := range Formats() {
		t.Run(format, func(t *testing.T) {
			out, err := Export(tool, format)
			if err != nil {
				t.Fatal(err)
			}
			var got []byte
			name := format + ".json"
			if s, ok := out.(string); ok {
				got = []byte(s)
				name = format + ".txt"
			} else {
				got, err = json.MarshalIndent(out, "", "  ")
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, '\n')
			}
			path := filepath.Join("testdata", "golden", name)
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if d := cmp.Diff(string(want), string(got)); d != "" {
				t.Errorf("%s mismatch (-want +got):\n%s", path, d)
			}
			// Exporting twice gives the same bytes.
			again, _ := Export(tool, format)
			if d := cmp.Diff(out, again); d != "" {
				t.Errorf("not deterministic:\n%s", d)
			}
		})
	}
}

func TestExportDoesNotAliasInput(t *testing.T) {
	tool := loadTool(t)
	before, _ := json.Marshal(tool)
	for _, f := range Formats() {
		if _, err := Export(tool, f); err != nil {
			t.Fatal(err)
		}
	}
	after, _ := json.Marshal(tool)
	if string(before) != string(after) {
		t.Errorf("Export modified its input:\nbefore %s\nafter  %s", before, after)
	}
}

func TestExportEmptySchema(t *testing.T) {
	empty := map[string]any{"type": "object", "properties": map[string]any{}}
	for _, f := range []string{FormatClaude, FormatMCP} {
		out, err := Export(Tool{ID: "a/b"}, f)
		if err != nil {
			t.Fatal(err)
		}
		m := out.(map[string]any)
		key := "input_schema"
		if f == FormatMCP {
			key = "inputSchema"
			if _, ok := m["outputSchema"]; ok {
				t.Errorf("mcp: outputSchema present without outputs")
			}
		}
		if d := cmp.Diff(empty, m[key]); d != "" {
			t.Errorf("%s: %s", f, d)
		}
	}
}

func TestExportMCPAddsObjectType(t *testing.T) {
	out, err := Export(Tool{ID: "a/b", Parameters: map[string]any{"properties": map[string]any{}}, Outputs: map[string]any{"type": "string"}}, FormatMCP)
	if err != nil {
		t.Fatal(err)
	}
	m := out.(map[string]any)
	if m["inputSchema"].(map[string]any)["type"] != "object" {
		t.Errorf("inputSchema type not added: %v", m["inputSchema"])
	}
	if _, ok := m["outputSchema"]; ok {
		t.Errorf("outputSchema for a non-object output: %v", m["outputSchema"])
	}
}

func TestExportErrors(t *testing.T) {
	_, err := Export(Tool{ID: "a/b"}, "langchain")
	if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "claude, openai, gemini, ollama, mcp") {
		t.Errorf("unknown format: %v", err)
	}
	_, err = Export(Tool{}, FormatClaude)
	if !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("nameless tool: %v", err)
	}
}

func TestToolName(t *testing.T) {
	tests := []struct{ name, id, want string }{
		{"category/name", "text/word_stats", "text_word_stats"},
		{"plain", "greeting", "greeting"},
		{"dash kept", "data/csv-summary", "data_csv-summary"},
		{"dots and spaces", "a.b c/d", "a_b_c_d"},
		{"unicode rune is one underscore", "tëxt/ünï", "t_xt__n_"},
		{"invalid utf8 byte", "a\xffb", "a_b"},
		{"empty", "", ""},
		{"truncated", strings.Repeat("x", 70), strings.Repeat("x", 64)},
		{"truncated after mapping", "c/" + strings.Repeat("é", 70), "c_" + strings.Repeat("_", 62)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ToolName(tt.id); got != tt.want {
				t.Errorf("ToolName(%q) = %q, want %q", tt.id, got, tt.want)
			}
		})
	}
}

func TestGeminiUpperCasesNestedTypes(t *testing.T) {
	params := map[string]any{
		"type": "object",
		"properties": map[string]any{
			"a": map[string]any{"type": "array", "items": map[string]any{"type": "object", "properties": map[string]any{
				"b": map[string]any{"type": "string"}}}},
			"c": map[string]any{"anyOf": []any{map[string]any{"type": "integer"}, map[string]any{"type": "null"}}},
			"d": map[string]any{"oneOf": []any{map[string]any{"type": "boolean"}}, "allOf": []any{map[string]any{"type": "number"}}},
			"e": map[string]any{"type": []any{"string", "null"}},
			"f": map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}},
			// A property named "type" and an enum of objects with a "type" key stay as they are.
			"type": map[string]any{"type": "string", "enum": []any{"x"}},
			"g":    map[string]any{"type": "object", "default": map[string]any{"type": "keep"}},
		},
	}
	out, err := Export(Tool{ID: "x/y", Parameters: params}, FormatGemini)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"type": "OBJECT",
		"properties": map[string]any{
			"a": map[string]any{"type": "ARRAY", "items": map[string]any{"type": "OBJECT", "properties": map[string]any{
				"b": map[string]any{"type": "STRING"}}}},
			"c":    map[string]any{"anyOf": []any{map[string]any{"type": "INTEGER"}, map[string]any{"type": "NULL"}}},
			"d":    map[string]any{"oneOf": []any{map[string]any{"type": "BOOLEAN"}}, "allOf": []any{map[string]any{"type": "NUMBER"}}},
			"e":    map[string]any{"type": []any{"STRING", "NULL"}},
			"f":    map[string]any{"type": "OBJECT", "additionalProperties": map[string]any{"type": "STRING"}},
			"type": map[string]any{"type": "STRING", "enum": []any{"x"}},
			"g":    map[string]any{"type": "OBJECT", "default": map[string]any{"type": "keep"}},
		},
	}
	if d := cmp.Diff(want, out.(map[string]any)["parameters"]); d != "" {
		t.Errorf("gemini parameters (-want +got):\n%s", d)
	}
	if params["type"] != "object" {
		t.Errorf("input modified")
	}
}
