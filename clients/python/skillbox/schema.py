"""Tool definitions for agent APIs, the same shapes as `skillbox schema`."""

import copy
import json
import re

MAX_TOOL_NAME_LEN = 64

_SCHEMA_KEYWORDS = (
    "items", "additionalProperties", "not", "contains", "propertyNames",
    "if", "then", "else", "unevaluatedItems", "unevaluatedProperties", "additionalItems",
)
_SCHEMA_LIST_KEYWORDS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_MAP_KEYWORDS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")


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
    return name, (m.get("description") or "").strip(), params, m


def to_claude_tool(bundle):
    """An Anthropic Messages API tool."""
    name, desc, params, _ = _parts(bundle)
    return {"name": name, "description": desc, "input_schema": params}


def to_openai_tool(bundle):
    """An OpenAI Chat Completions function tool."""
    name, desc, params, _ = _parts(bundle)
    return {"type": "function", "function": {"name": name, "description": desc, "parameters": params}}


def to_gemini_tool(bundle):
    """A Gemini function declaration (types upper-cased)."""
    name, desc, params, _ = _parts(bundle)
    return {"name": name, "description": desc, "parameters": _upper_types(params)}


def to_mcp_tool(bundle):
    """An MCP tool (inputSchema, and outputSchema for object outputs)."""
    name, desc, params, m = _parts(bundle)
    params.setdefault("type", "object")
    out = {"name": name, "description": desc, "inputSchema": params}
    outputs = m.get("outputs")
    if isinstance(outputs, dict) and outputs.get("type") == "object":
        out["outputSchema"] = copy.deepcopy(outputs)
    return out


def _upper_types(s):
    if not isinstance(s, dict):
        return s
    t = s.get("type")
    if isinstance(t, str):
        s["type"] = t.upper()
    elif isinstance(t, list):
        s["type"] = [x.upper() if isinstance(x, str) else x for x in t]
    for kw in _SCHEMA_KEYWORDS:
        if kw in s:
            if kw == "items" and isinstance(s[kw], list):
                for e in s[kw]:
                    _upper_types(e)
            else:
                _upper_types(s[kw])
    for kw in _SCHEMA_LIST_KEYWORDS:
        if isinstance(s.get(kw), list):
            for e in s[kw]:
                _upper_types(e)
    for kw in _SCHEMA_MAP_KEYWORDS:
        if isinstance(s.get(kw), dict):
            for e in s[kw].values():
                _upper_types(e)
    return s


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
        lines.append("Description: %s" % desc)
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
