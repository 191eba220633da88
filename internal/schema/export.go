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
		// Anthropic's input_schema must be an object schema.
		return map[string]any{"name": name, "description": t.Description, "input_schema": objectSchema(params)}, nil
	case FormatOpenAI:
		// OpenAI's function parameters must be an object schema.
		return map[string]any{
			"type":     "function",
			"function": map[string]any{"name": name, "description": t.Description, "parameters": objectSchema(params)},
		}, nil
	case FormatGemini:
		out := map[string]any{"name": name, "description": t.Description}
		// Gemini rejects an OBJECT without properties; a function without
		// parameters leaves "parameters" out.
		if p := geminiSchema(inlineRefs(objectSchema(params), deepCopy(params).(map[string]any), 0)); len(p.(map[string]any)["properties"].(map[string]any)) > 0 {
			out["parameters"] = p
		}
		return out, nil
	case FormatOllama:
		return ollamaText(name, t, params), nil
	case FormatMCP:
		out := map[string]any{"name": name, "description": t.Description, "inputSchema": objectSchema(params)}
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

// objectSchema gives p, a top-level parameters schema, the "type":
// "object" every agent API requires there (a manifest may leave it out),
// and a "properties" map when it has none.
func objectSchema(p map[string]any) map[string]any {
	if _, ok := p["type"]; !ok {
		p["type"] = "object"
	}
	if _, ok := p["properties"].(map[string]any); !ok && p["type"] == "object" {
		p["properties"] = map[string]any{}
	}
	return p
}

// maxRefDepth bounds how deep inlineRefs follows $ref into $ref; a
// recursive schema is cut there (to an empty schema).
const maxRefDepth = 8

// inlineRefs replaces, in s (a copy; it is changed), every local "$ref"
// ("#/$defs/x", any JSON pointer into root) by a copy of what it points
// to, for formats without $ref. A reference that does not resolve, or that
// recurses past maxRefDepth, becomes an empty schema.
func inlineRefs(s any, root map[string]any, depth int) any {
	switch v := s.(type) {
	case map[string]any:
		if ref, ok := v["$ref"].(string); ok {
			target, ok := resolvePointer(root, ref)
			if !ok || depth >= maxRefDepth {
				return map[string]any{}
			}
			resolved, _ := inlineRefs(deepCopy(target), root, depth+1).(map[string]any)
			if resolved == nil {
				return map[string]any{}
			}
			// Siblings of $ref (a description, say) win over the target's.
			for k, x := range v {
				if k != "$ref" {
					resolved[k] = inlineRefs(x, root, depth)
				}
			}
			return resolved
		}
		for k, x := range v {
			v[k] = inlineRefs(x, root, depth)
		}
		return v
	case []any:
		for i, x := range v {
			v[i] = inlineRefs(x, root, depth)
		}
		return v
	default:
		return v
	}
}

// resolvePointer resolves a local JSON pointer reference ("#/a/b") in root.
func resolvePointer(root map[string]any, ref string) (any, bool) {
	rest, ok := strings.CutPrefix(ref, "#")
	if !ok {
		return nil, false
	}
	var cur any = root
	if rest == "" {
		return cur, true
	}
	if !strings.HasPrefix(rest, "/") {
		return nil, false
	}
	for _, tok := range strings.Split(rest[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[tok]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// geminiKeywords are the fields of the Gemini API's Schema object, the
// "select subset of an OpenAPI 3.0 schema object" its function
// declarations accept (ai.google.dev/api/caching#Schema). Everything else
// — additionalProperties, $ref and $defs, oneOf, allOf, not, const,
// exclusiveMinimum, patternProperties, ... — is rejected by the API.
var geminiKeywords = map[string]bool{
	"type": true, "format": true, "title": true, "description": true, "nullable": true, "enum": true,
	"maxItems": true, "minItems": true, "properties": true, "required": true, "minProperties": true,
	"maxProperties": true, "minLength": true, "maxLength": true, "pattern": true, "example": true,
	"anyOf": true, "propertyOrdering": true, "default": true, "items": true, "minimum": true, "maximum": true,
}

// geminiSchema returns s in Gemini's subset (s is a copy; it is changed):
// types upper-cased ("STRING", "OBJECT", ...); a list of types becomes one
// type plus "nullable" or an anyOf of single types; oneOf becomes anyOf; a
// string const becomes a one-value enum; an enum that is not all strings,
// tuple items and every keyword outside the subset are dropped. What is
// dropped only loosens the description the model reads: skillbox still
// validates every call's params against the manifest's whole schema.
func geminiSchema(s any) any {
	m, ok := s.(map[string]any)
	if !ok {
		return map[string]any{} // a boolean schema: no constraint Gemini can say
	}
	if c, ok := m["const"].(string); ok {
		if _, has := m["enum"]; !has {
			m["enum"] = []any{c}
		}
		if _, has := m["type"]; !has {
			m["type"] = "string"
		}
	}
	if o, ok := m["oneOf"]; ok {
		if _, has := m["anyOf"]; !has {
			m["anyOf"] = o
		}
	}
	switch t := m["type"].(type) {
	case string:
		// The API's Type enum has no NULL in every version: "null" is
		// said with nullable.
		if t == "null" {
			delete(m, "type")
			m["nullable"] = true
		} else {
			m["type"] = strings.ToUpper(t)
		}
	case []any:
		var types []string
		for _, x := range t {
			switch x := x.(type) {
			case string:
				if x == "null" {
					m["nullable"] = true
				} else {
					types = append(types, strings.ToUpper(x))
				}
			}
		}
		delete(m, "type")
		switch len(types) {
		case 0:
		case 1:
			m["type"] = types[0]
		default:
			if _, has := m["anyOf"]; !has {
				alts := make([]any, len(types))
				for i, t := range types {
					alts[i] = map[string]any{"type": t}
				}
				m["anyOf"] = alts
			}
		}
	default:
		delete(m, "type")
	}
	for k := range m {
		if !geminiKeywords[k] {
			delete(m, k)
		}
	}
	if e, ok := m["enum"].([]any); ok {
		for _, x := range e {
			if _, ok := x.(string); !ok {
				delete(m, "enum")
				break
			}
		}
	}
	if props, ok := m["properties"].(map[string]any); ok {
		for k, p := range props {
			props[k] = geminiSchema(p)
		}
	} else {
		delete(m, "properties")
	}
	if items, ok := m["items"].(map[string]any); ok {
		m["items"] = geminiSchema(items)
	} else {
		delete(m, "items") // absent, boolean or the draft-04 tuple form
	}
	if alts, ok := m["anyOf"].([]any); ok {
		kept := make([]any, 0, len(alts))
		for _, a := range alts {
			g := geminiSchema(a).(map[string]any)
			if len(g) == 1 && g["nullable"] == true { // was {"type": "null"}
				m["nullable"] = true
				continue
			}
			kept = append(kept, g)
		}
		if len(kept) > 0 {
			m["anyOf"] = kept
		} else {
			delete(m, "anyOf")
		}
	} else {
		delete(m, "anyOf")
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
