"""Tool definitions for agent APIs, the same shapes as `skillbox schema`."""

import copy
import json
import re

MAX_TOOL_NAME_LEN = 64


def tool_name(skill_id):
    """The tool name of a skill id: "/" and every character outside
    [A-Za-z0-9_-] become "_", cut to 64 characters."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", skill_id[:MAX_TOOL_NAME_LEN])


def _parts(bundle):
    m = bundle.get("manifest") or {}
    skill_id = bundle.get("id") or m.get("name") or ""
    name = tool_name(skill_id)
    if not name:
        raise ValueError("skill bundle has neither an id nor a manifest name")
    params = m.get("parameters")
    params = copy.deepcopy(params) if params else {"type": "object", "properties": {}}
    # The manifest's description byte for byte, as Skillware's adapters pass it.
    return name, m.get("description") or "", params, m


def _object_schema(p):
    # Every agent API wants an object schema at the top of the parameters.
    p.setdefault("type", "object")
    if p["type"] == "object" and not isinstance(p.get("properties"), dict):
        p["properties"] = {}
    return p


def to_claude_tool(bundle):
    """An Anthropic Messages API tool."""
    name, desc, params, _ = _parts(bundle)
    return {"name": name, "description": desc, "input_schema": _object_schema(params)}


def to_openai_tool(bundle):
    """An OpenAI Chat Completions function tool."""
    name, desc, params, _ = _parts(bundle)
    return {"type": "function", "function": {"name": name, "description": desc, "parameters": _object_schema(params)}}


def to_gemini_tool(bundle):
    """A Gemini function declaration: the parameters in Gemini's subset of
    OpenAPI 3.0 (upper-case types, nullable, no additionalProperties, $ref
    inlined), and none for a skill without parameters."""
    name, desc, params, _ = _parts(bundle)
    out = {"name": name, "description": desc}
    _object_schema(params)
    p = _gemini_schema(_inline_refs(params, copy.deepcopy(params), 0))
    if p.get("properties"):
        out["parameters"] = p
    return out


def to_mcp_tool(bundle):
    """An MCP tool (inputSchema, and outputSchema for object outputs)."""
    name, desc, params, m = _parts(bundle)
    out = {"name": name, "description": desc, "inputSchema": _object_schema(params)}
    outputs = m.get("outputs")
    if isinstance(outputs, dict) and outputs.get("type") == "object":
        out["outputSchema"] = copy.deepcopy(outputs)
    return out


_GEMINI_KEYWORDS = frozenset((
    "type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems",
    "properties", "required", "minProperties", "maxProperties", "minLength", "maxLength",
    "pattern", "example", "anyOf", "propertyOrdering", "default", "items", "minimum", "maximum",
))
_MAX_REF_DEPTH = 8


def _resolve_pointer(root, ref):
    if not ref.startswith("#"):
        return None, False
    rest = ref[1:]
    cur = root
    if rest == "":
        return cur, True
    if not rest.startswith("/"):
        return None, False
    for tok in rest[1:].split("/"):
        tok = tok.replace("~1", "/").replace("~0", "~")
        if not isinstance(cur, dict) or tok not in cur:
            return None, False
        cur = cur[tok]
    return cur, True


def _inline_refs(s, root, depth):
    # Local $ref replaced by a copy of its target, as schema.inlineRefs does.
    if isinstance(s, dict):
        ref = s.get("$ref")
        if isinstance(ref, str):
            target, ok = _resolve_pointer(root, ref)
            if not ok or depth >= _MAX_REF_DEPTH:
                return {}
            resolved = _inline_refs(copy.deepcopy(target), root, depth + 1)
            if not isinstance(resolved, dict):
                return {}
            for k, x in s.items():
                if k != "$ref":
                    resolved[k] = _inline_refs(x, root, depth)
            return resolved
        for k in list(s):
            s[k] = _inline_refs(s[k], root, depth)
        return s
    if isinstance(s, list):
        return [_inline_refs(x, root, depth) for x in s]
    return s


def _gemini_schema(s):
    # Gemini's schema subset, as schema.geminiSchema does.
    if not isinstance(s, dict):
        return {}
    m = s
    if isinstance(m.get("const"), str):
        m.setdefault("enum", [m["const"]])
        m.setdefault("type", "string")
    if "oneOf" in m and "anyOf" not in m:
        m["anyOf"] = m["oneOf"]
    t = m.get("type")
    if isinstance(t, str):
        if t == "null":
            del m["type"]
            m["nullable"] = True
        else:
            m["type"] = t.upper()
    elif isinstance(t, list):
        types = []
        for x in t:
            if isinstance(x, str):
                if x == "null":
                    m["nullable"] = True
                else:
                    types.append(x.upper())
        del m["type"]
        if len(types) == 1:
            m["type"] = types[0]
        elif len(types) > 1 and "anyOf" not in m:
            m["anyOf"] = [{"type": x} for x in types]
    else:
        m.pop("type", None)
    for k in list(m):
        if k not in _GEMINI_KEYWORDS:
            del m[k]
    if isinstance(m.get("enum"), list) and not all(isinstance(x, str) for x in m["enum"]):
        del m["enum"]
    if isinstance(m.get("properties"), dict):
        for k in m["properties"]:
            m["properties"][k] = _gemini_schema(m["properties"][k])
    else:
        m.pop("properties", None)
    if isinstance(m.get("items"), dict):
        m["items"] = _gemini_schema(m["items"])
    else:
        m.pop("items", None)
    if isinstance(m.get("anyOf"), list):
        kept = []
        for a in m["anyOf"]:
            g = _gemini_schema(a)
            if g == {"nullable": True}:
                m["nullable"] = True
                continue
            kept.append(g)
        if kept:
            m["anyOf"] = kept
        else:
            del m["anyOf"]
    else:
        m.pop("anyOf", None)
    return m


def _compact(v):
    # Go's encoding/json: sorted keys, no spaces, HTML characters escaped.
    s = json.dumps(v, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        s = s.replace(ch, esc)
    return s


def _type_text(t):
    if isinstance(t, str):
        return t
    if isinstance(t, list):
        return " or ".join(str(x) for x in t)
    return "any"


def to_ollama_prompt(bundle):
    """A system-prompt description of the tool, for models without native
    tool calling: the reply format and the skill's instructions."""
    name, desc, params, _ = _parts(bundle)
    lines = ["Tool: %s" % name]
    if desc:
        lines.append("Description: %s" % desc.strip())
    props = params.get("properties") if isinstance(params.get("properties"), dict) else {}
    required = set(x for x in params.get("required") or [] if isinstance(x, str))
    lines.append("Parameters:")
    if not props:
        lines.append("  (none)")
    for n in sorted(props):
        p = props[n] if isinstance(props[n], dict) else {}
        line = "  - %s (%s, %s)" % (n, _type_text(p.get("type")), "required" if n in required else "optional")
        d = p.get("description")
        if isinstance(d, str) and d:
            line += ": %s" % d.strip()
        if isinstance(p.get("enum"), list):
            line += " One of: %s." % _compact(p["enum"])
        if "default" in p:
            line += " Default: %s." % _compact(p["default"])
        lines.append(line)
    lines.append("To call this tool, reply with only this JSON object, with the parameters filled in:")
    lines.append('{"tool": %s, "params": {...}}' % _compact(name))
    ins = (bundle.get("instructions") or "").strip()
    if ins:
        lines.append("Instructions:")
        lines.append(ins)
    return "\n".join(lines) + "\n"
