package schema

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/skillbox-dev/skillbox/errdefs"
)

// Tool is what an export needs to know about a skill. The caller fills it
// from the skill's manifest and instructions.
type Tool struct {
	// ID is the skill ID, "category/name". The exported tool name is
	// derived from it (see [ToolName]); Name is used only when ID is empty.
	ID string
	// Name is the manifest name.
	Name string
	// Description is the manifest description.
	Description string
	// Parameters is the manifest parameters JSON Schema; nil or empty
	// means an object with no declared properties.
	Parameters map[string]any
	// Outputs is the manifest outputs schema, if any.
	Outputs any
	// Instructions is the skill's instructions.md, used by the ollama format.
	Instructions string
}

// The export formats.
const (
	FormatClaude = "claude"
	FormatOpenAI = "openai"
	FormatGemini = "gemini"
	FormatOllama = "ollama"
	FormatMCP    = "mcp"
)

// Formats lists the export formats in a stable order.
func Formats() []string {
	return []string{FormatClaude, FormatOpenAI, FormatGemini, FormatOllama, FormatMCP}
}

// MaxToolNameLen is the longest tool name the agent APIs accept.
const MaxToolNameLen = 64

// ToolName derives a tool name from a skill ID: "/" and every character
// outside [A-Za-z0-9_-] become "_", and the result is cut to 64 characters,
// so "text/word_stats" becomes "text_word_stats".
func ToolName(id string) string {
	var sb strings.Builder
	n := 0
	for _, r := range id {
		if n == MaxToolNameLen {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
			sb.WriteRune(r)
		default:
			sb.WriteByte('_')
		}
		n++
	}
	return sb.String()
}

// Export renders t as a tool definition in format: "claude", "openai",
// "gemini" and "mcp" give JSON-ready maps, "ollama" a string for a system
// prompt. The result shares nothing with t. An unknown format is an Invalid
// error listing the known ones.
func Export(t Tool, format string) (any, error) {
	id := t.ID
	if id == "" {
		id = t.Name
	}
	name := ToolName(id)
	if name == "" {
		return nil, errdefs.New(errdefs.Invalid, "schema: tool has neither an ID nor a name")
	}
	params := parametersOf(t.Parameters)
	switch format {
	case FormatClaude:
		return map[string]any{"name": name, "description": t.Description, "input_schema": params}, nil
	case FormatOpenAI:
		return map[string]any{
			"type":     "function",
			"function": map[string]any{"name": name, "description": t.Description, "parameters": params},
		}, nil
	case FormatGemini:
		return map[string]any{"name": name, "description": t.Description, "parameters": upperTypes(params)}, nil
	case FormatOllama:
		return ollamaText(name, t, params), nil
	case FormatMCP:
		if _, ok := params["type"]; !ok {
			params["type"] = "object"
		}
		out := map[string]any{"name": name, "description": t.Description, "inputSchema": params}
		if o, ok := t.Outputs.(map[string]any); ok && o["type"] == "object" {
			out["outputSchema"] = deepCopy(o)
		}
		return out, nil
	default:
		return nil, errdefs.New(errdefs.Invalid, "schema: unknown export format %q (known: %s)", format, strings.Join(Formats(), ", "))
	}
}

// parametersOf returns a copy of p, or an empty object schema.
func parametersOf(p map[string]any) map[string]any {
	if len(p) == 0 {
		return map[string]any{"type": "object", "properties": map[string]any{}}
	}
	return deepCopy(p).(map[string]any)
}

func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[k] = deepCopy(x)
		}
		return m
	case []any:
		s := make([]any, len(v))
		for i, x := range v {
			s[i] = deepCopy(x)
		}
		return s
	default:
		return v
	}
}

// upperTypes upper-cases every "type" in schema s and in its subschemas
// (Gemini's OpenAPI dialect wants "STRING", "OBJECT", ...). It walks only
// keywords that hold schemas, so an enum value or default that happens to
// be an object with a "type" key is left alone. It modifies s in place.
func upperTypes(s any) any {
	m, ok := s.(map[string]any)
	if !ok {
		return s
	}
	switch t := m["type"].(type) {
	case string:
		m["type"] = strings.ToUpper(t)
	case []any:
		for i, x := range t {
			if xs, ok := x.(string); ok {
				t[i] = strings.ToUpper(xs)
			}
		}
	}
	// Keywords whose value is a schema.
	for _, kw := range []string{"items", "additionalProperties", "not", "contains", "propertyNames",
		"if", "then", "else", "unevaluatedItems", "unevaluatedProperties", "additionalItems"} {
		if x, ok := m[kw]; ok {
			if arr, ok := x.([]any); ok && kw == "items" { // draft-04 tuple form
				for _, e := range arr {
					upperTypes(e)
				}
				continue
			}
			upperTypes(x)
		}
	}
	// Keywords whose value is an array of schemas.
	for _, kw := range []string{"anyOf", "oneOf", "allOf", "prefixItems"} {
		if arr, ok := m[kw].([]any); ok {
			for _, e := range arr {
				upperTypes(e)
			}
		}
	}
	// Keywords whose value maps names to schemas.
	for _, kw := range []string{"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"} {
		if props, ok := m[kw].(map[string]any); ok {
			for _, e := range props {
				upperTypes(e)
			}
		}
	}
	return m
}

// ollamaText describes the tool for a system prompt, for models without
// native tool calling. Properties are listed in name order.
func ollamaText(name string, t Tool, params map[string]any) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "Tool: %s\n", name)
	if t.Description != "" {
		fmt.Fprintf(&sb, "Description: %s\n", strings.TrimSpace(t.Description))
	}
	props, _ := params["properties"].(map[string]any)
	required := map[string]bool{}
	if r, ok := params["required"].([]any); ok {
		for _, x := range r {
			if s, ok := x.(string); ok {
				required[s] = true
			}
		}
	} else if r, ok := params["required"].([]string); ok {
		for _, s := range r {
			required[s] = true
		}
	}
	names := make([]string, 0, len(props))
	for k := range props {
		names = append(names, k)
	}
	sort.Strings(names)
	sb.WriteString("Parameters:\n")
	if len(names) == 0 {
		sb.WriteString("  (none)\n")
	}
	for _, n := range names {
		p, _ := props[n].(map[string]any)
		req := "optional"
		if required[n] {
			req = "required"
		}
		fmt.Fprintf(&sb, "  - %s (%s, %s)", n, typeText(p["type"]), req)
		if d, ok := p["description"].(string); ok && d != "" {
			fmt.Fprintf(&sb, ": %s", strings.TrimSpace(d))
		}
		if e, ok := p["enum"].([]any); ok {
			fmt.Fprintf(&sb, " One of: %s.", compactJSON(e))
		}
		if d, ok := p["default"]; ok {
			fmt.Fprintf(&sb, " Default: %s.", compactJSON(d))
		}
		sb.WriteByte('\n')
	}
	sb.WriteString("To call this tool, reply with only this JSON object, with the parameters filled in:\n")
	fmt.Fprintf(&sb, "{\"tool\": %s, \"params\": {...}}\n", compactJSON(name))
	if ins := strings.TrimSpace(t.Instructions); ins != "" {
		sb.WriteString("Instructions:\n")
		sb.WriteString(ins)
		sb.WriteByte('\n')
	}
	return sb.String()
}

func typeText(t any) string {
	switch t := t.(type) {
	case string:
		return t
	case []any:
		var parts []string
		for _, x := range t {
			parts = append(parts, fmt.Sprint(x))
		}
		return strings.Join(parts, " or ")
	default:
		return "any"
	}
}

func compactJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
