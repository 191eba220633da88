import json
import os
import subprocess
import unittest

from support import REPO, binary, env

from skillbox import SkillLoader, CLIClient, tool_name
from skillbox import schema

IDS = ["text/word_stats", "text/readability", "data/csv_summary", "utility/greeting", "test/echo", "test/raises", "test/shape"]
FORMATS = {
    "claude": SkillLoader.to_claude_tool,
    "openai": SkillLoader.to_openai_tool,
    "gemini": SkillLoader.to_gemini_tool,
    "mcp": SkillLoader.to_mcp_tool,
    "ollama": SkillLoader.to_ollama_prompt,
}


class SchemaTest(unittest.TestCase):
    """The Python exports equal `skillbox schema` for every skill and format."""

    def test_matches_cli(self):
        loader = SkillLoader(CLIClient(binary(), env=env()))
        for sid in IDS:
            bundle = loader.load_skill(sid)
            for fmt, fn in FORMATS.items():
                with self.subTest(skill=sid, format=fmt):
                    p = subprocess.run([binary(), "schema", sid, "--format", fmt], env=env(),
                                       capture_output=True, check=True)
                    want = p.stdout.decode() if fmt == "ollama" else json.loads(p.stdout)
                    self.assertEqual(fn(bundle), want)

    def test_tool_name(self):
        for sid, want in [("text/word_stats", "text_word_stats"), ("a.b/c d", "a_b_c_d"), ("x/" + "y" * 80, "x_" + "y" * 62)]:
            self.assertEqual(tool_name(sid), want)

    def test_no_parameters(self):
        b = {"id": "x/y", "manifest": {"name": "y", "description": " d "}}
        self.assertEqual(schema.to_claude_tool(b), {"name": "x_y", "description": " d ", "input_schema": {"type": "object", "properties": {}}})
        self.assertNotIn("parameters", schema.to_gemini_tool(b))
        self.assertIn("  (none)\n", schema.to_ollama_prompt(b))

    def test_gemini_nested(self):
        b = {"id": "x/y", "manifest": {"parameters": {"type": "object", "properties": {
            "a": {"type": "array", "items": {"type": "string", "default": {"type": "keep"}}},
            "b": {"anyOf": [{"type": "integer"}, {"type": ["null", "number"]}]}}}}}
        p = schema.to_gemini_tool(b)["parameters"]
        self.assertEqual(p["properties"]["a"]["items"]["type"], "STRING")
        self.assertEqual(p["properties"]["a"]["items"]["default"], {"type": "keep"})
        self.assertEqual(p["properties"]["b"]["anyOf"][1], {"type": "NUMBER", "nullable": True})
        self.assertEqual(b["manifest"]["parameters"]["type"], "object", "the bundle was modified")

    def test_matches_go_golden(self):
        """The Python exports equal the Go package's golden files for every
        fixture in internal/schema/testdata (no binary needed)."""
        data = os.path.join(REPO, "internal", "schema", "testdata")
        for fixture, prefix in (("tool.json", ""), ("keywords.json", "keywords_"), ("noparams.json", "noparams_")):
            with open(os.path.join(data, fixture), encoding="utf-8") as f:
                t = json.load(f)
            bundle = {"id": t.get("ID") or "", "instructions": t.get("Instructions") or "", "manifest": {
                "name": t.get("Name"), "description": t.get("Description") or "",
                "parameters": t.get("Parameters"), "outputs": t.get("Outputs")}}
            for fmt, fn in FORMATS.items():
                with self.subTest(fixture=fixture, format=fmt):
                    path = os.path.join(data, "golden", prefix + fmt + (".txt" if fmt == "ollama" else ".json"))
                    with open(path, encoding="utf-8") as f:
                        want = f.read() if fmt == "ollama" else json.load(f)
                    self.assertEqual(fn(bundle), want)


if __name__ == "__main__":
    unittest.main()
