package schema

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
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

func loadToolFile(t *testing.T, name string) Tool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var tool Tool
	if err := json.Unmarshal(b, &tool); err != nil {
		t.Fatal(err)
	}
	return tool
}

// TestExportGolden exports each fixture in every format, compares it with
// testdata/golden (go test -update rewrites them) and checks it against the
// provider's documented tool shape (checkFormat).
func TestExportGolden(t *testing.T) {
	// fixture file → golden name prefix
	for file, prefix := range map[string]string{"tool.json": "", "keywords.json": "keywords_", "noparams.json": "noparams_"} {
		tool := loadToolFile(t, file)
		for _, format := range Formats() {
			t.Run(prefix+format, func(t *testing.T) {
				exportGolden(t, tool, format, prefix)
			})
		}
	}
}

func exportGolden(t *testing.T, tool Tool, format, prefix string) {
	out, err := Export(tool, format)
	if err != nil {
		t.Fatal(err)
	}
	checkFormat(t, format, out, tool.Description)
	var got []byte
	name := prefix + format + ".json"
	if s, ok := out.(string); ok {
		got = []byte(s)
		name = prefix + format + ".txt"
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

// TestGeminiSubset: Gemini's function declarations take a subset of
// OpenAPI 3.0's schema object; everything outside it is rejected by the
// API, so the export keeps only the subset, with upper-case types.
func TestGeminiSubset(t *testing.T) {
	params := map[string]any{
		"type":                 "object",
		"additionalProperties": false,
		"$defs":                map[string]any{"x": map[string]any{"type": "string"}},
		"properties": map[string]any{
			"a": map[string]any{"type": "array", "items": map[string]any{"type": "object", "properties": map[string]any{
				"b": map[string]any{"type": "string", "minLength": 1}}}},
			"c": map[string]any{"anyOf": []any{map[string]any{"type": "integer"}, map[string]any{"type": "null"}}},
			"d": map[string]any{"oneOf": []any{map[string]any{"type": "boolean"}}, "allOf": []any{map[string]any{"type": "number"}}},
			"e": map[string]any{"type": []any{"string", "null"}},
			"f": map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}},
			// A property named "type" and an enum of objects with a "type" key stay as they are.
			"type": map[string]any{"type": "string", "enum": []any{"x"}},
			"g":    map[string]any{"type": "object", "default": map[string]any{"type": "keep"}},
			"h":    map[string]any{"type": []any{"string", "integer"}, "description": "either"},
			"i":    map[string]any{"const": "fixed", "type": "string"},
			"j":    map[string]any{"type": "integer", "enum": []any{1, 2}, "exclusiveMinimum": 0},
			"k":    map[string]any{"type": "array", "items": []any{map[string]any{"type": "string"}}},
			"l":    map[string]any{"$ref": "#/$defs/x"},
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
				"b": map[string]any{"type": "STRING", "minLength": 1}}}},
			"c":    map[string]any{"anyOf": []any{map[string]any{"type": "INTEGER"}}, "nullable": true},
			"d":    map[string]any{"anyOf": []any{map[string]any{"type": "BOOLEAN"}}},
			"e":    map[string]any{"type": "STRING", "nullable": true},
			"f":    map[string]any{"type": "OBJECT"},
			"type": map[string]any{"type": "STRING", "enum": []any{"x"}},
			"g":    map[string]any{"type": "OBJECT", "default": map[string]any{"type": "keep"}},
			"h":    map[string]any{"anyOf": []any{map[string]any{"type": "STRING"}, map[string]any{"type": "INTEGER"}}, "description": "either"},
			"i":    map[string]any{"type": "STRING", "enum": []any{"fixed"}},
			"j":    map[string]any{"type": "INTEGER"},
			"k":    map[string]any{"type": "ARRAY"},
			"l":    map[string]any{"type": "STRING"}, // $ref inlined
		},
	}
	if d := cmp.Diff(want, out.(map[string]any)["parameters"]); d != "" {
		t.Errorf("gemini parameters (-want +got):\n%s", d)
	}
	if params["type"] != "object" || params["additionalProperties"] != false {
		t.Errorf("input modified")
	}
	// No parameters: Gemini rejects an OBJECT without properties, so the
	// declaration has none.
	out, _ = Export(Tool{ID: "x/y", Description: "d"}, FormatGemini)
	if _, ok := out.(map[string]any)["parameters"]; ok {
		t.Errorf("a tool without parameters exports parameters: %v", out)
	}
}

// The keywords of Gemini's Schema object (its "select subset" of OpenAPI
// 3.0), and its type names.
var (
	geminiAllowed = map[string]bool{"type": true, "format": true, "title": true, "description": true, "nullable": true, "enum": true,
		"maxItems": true, "minItems": true, "properties": true, "required": true, "minProperties": true, "maxProperties": true,
		"minLength": true, "maxLength": true, "pattern": true, "example": true, "anyOf": true, "propertyOrdering": true,
		"default": true, "items": true, "minimum": true, "maximum": true}
	geminiTypes = map[string]bool{"STRING": true, "NUMBER": true, "INTEGER": true, "BOOLEAN": true, "ARRAY": true, "OBJECT": true}
	// Tool names: Claude and OpenAI ^[a-zA-Z0-9_-]{1,64}$; Gemini starts
	// with a letter or "_" and may hold "." and ":" too; MCP 1-128 of
	// [A-Za-z0-9_.-].
	apiName    = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)
	geminiName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}$`)
	mcpName    = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}$`)
)

// checkGeminiSchema reports every place s leaves Gemini's subset.
func checkGeminiSchema(t *testing.T, path string, s any) {
	t.Helper()
	m, ok := s.(map[string]any)
	if !ok {
		t.Errorf("%s: not a schema object: %v", path, s)
		return
	}
	for k, v := range m {
		switch {
		case !geminiAllowed[k]:
			t.Errorf("%s: %q is not in Gemini's schema subset", path, k)
		case k == "type":
			if ts, ok := v.(string); !ok || !geminiTypes[ts] {
				t.Errorf("%s: type %v is not one Gemini type", path, v)
			}
		case k == "enum":
			for _, e := range v.([]any) {
				if _, ok := e.(string); !ok {
					t.Errorf("%s: enum value %v is not a string", path, e)
				}
			}
		case k == "properties":
			for n, p := range v.(map[string]any) {
				checkGeminiSchema(t, path+"/properties/"+n, p)
			}
		case k == "items":
			checkGeminiSchema(t, path+"/items", v)
		case k == "anyOf":
			for i, a := range v.([]any) {
				checkGeminiSchema(t, fmt.Sprintf("%s/anyOf/%d", path, i), a)
			}
		}
	}
}

// checkFormat checks out, an export in format, against the provider's
// documented shape for a tool definition.
func checkFormat(t *testing.T, format string, out any, desc string) {
	t.Helper()
	if format == FormatOllama {
		if s, ok := out.(string); !ok || !strings.HasPrefix(s, "Tool: ") {
			t.Errorf("ollama: not a prompt text: %v", out)
		}
		return
	}
	m := out.(map[string]any)
	objectTop := func(key string, s any) {
		if p, ok := s.(map[string]any); !ok || p["type"] != "object" {
			t.Errorf("%s: %s is not an object schema: %v", format, key, s)
		}
	}
	if format == FormatOpenAI {
		if m["type"] != "function" {
			t.Errorf("openai: type %v", m["type"])
		}
		m = m["function"].(map[string]any)
	}
	if m["description"] != desc {
		t.Errorf("%s: description %q is not the manifest's, byte for byte (%q)", format, m["description"], desc)
	}
	name, _ := m["name"].(string)
	switch format {
	case FormatClaude:
		objectTop("input_schema", m["input_schema"])
		if !apiName.MatchString(name) {
			t.Errorf("claude: bad name %q", name)
		}
	case FormatOpenAI:
		objectTop("parameters", m["parameters"])
		if !apiName.MatchString(name) {
			t.Errorf("openai: bad name %q", name)
		}
	case FormatMCP:
		objectTop("inputSchema", m["inputSchema"])
		if o, ok := m["outputSchema"]; ok {
			objectTop("outputSchema", o)
		}
		if !mcpName.MatchString(name) {
			t.Errorf("mcp: bad name %q", name)
		}
	case FormatGemini:
		if !geminiName.MatchString(name) {
			t.Errorf("gemini: bad name %q", name)
		}
		if p, ok := m["parameters"]; ok {
			checkGeminiSchema(t, "parameters", p)
			if pm := p.(map[string]any); pm["type"] != "OBJECT" || len(pm["properties"].(map[string]any)) == 0 {
				t.Errorf("gemini: parameters must be an OBJECT with properties: %v", p)
			}
		}
		for k := range m {
			if k != "name" && k != "description" && k != "parameters" {
				t.Errorf("gemini: unexpected field %q", k)
			}
		}
	}
}

// A recursive $ref is cut, not followed forever.
func TestGeminiRecursiveRef(t *testing.T) {
	params := map[string]any{
		"type":       "object",
		"$defs":      map[string]any{"node": map[string]any{"type": "object", "properties": map[string]any{"next": map[string]any{"$ref": "#/$defs/node"}}}},
		"properties": map[string]any{"root": map[string]any{"$ref": "#/$defs/node"}, "bad": map[string]any{"$ref": "#/$defs/missing"}},
	}
	out, err := Export(Tool{ID: "x/y", Parameters: params}, FormatGemini)
	if err != nil {
		t.Fatal(err)
	}
	p := out.(map[string]any)["parameters"].(map[string]any)
	checkGeminiSchema(t, "parameters", p)
	depth := 0
	for n := p["properties"].(map[string]any)["root"]; n != nil; depth++ {
		props, _ := n.(map[string]any)["properties"].(map[string]any)
		n = props["next"]
	}
	if depth < 2 || depth > maxRefDepth+2 {
		t.Errorf("recursive $ref inlined to depth %d", depth)
	}
	if d := cmp.Diff(map[string]any{}, p["properties"].(map[string]any)["bad"]); d != "" {
		t.Errorf("unresolvable $ref: %s", d)
	}
}
