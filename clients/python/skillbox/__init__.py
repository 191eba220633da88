"""skillbox: load Skillware skills whose calls run sandboxed in skillbox.

The API mirrors Skillware's ``SkillLoader``: ``load_skill(id)`` returns a
bundle dict (manifest, instructions, card) whose ``skill.execute(params)``
and ``execute(params)`` run the skill through skillbox -- over HTTP when
``SKILLBOX_URL`` is set (with ``SKILLBOX_TOKEN``), else by running
``skillbox run --json`` per call, or, with ``SKILLBOX_STDIO=1``, through one
``skillbox serve --stdio`` child that serves every call. ``to_claude_tool``, ``to_openai_tool``,
``to_gemini_tool`` and ``to_ollama_prompt`` give the same shapes as
``skillbox schema``. Only the standard library is used.
"""

from .client import CLIClient, HTTPClient, SkillboxError, StdioClient, client_from_env
from .loader import RemoteSkill, SkillLoader
from .schema import (
    to_claude_tool,
    to_gemini_tool,
    to_mcp_tool,
    to_ollama_prompt,
    to_openai_tool,
    tool_name,
)

__all__ = [
    "CLIClient",
    "HTTPClient",
    "RemoteSkill",
    "SkillLoader",
    "SkillboxError",
    "StdioClient",
    "client_from_env",
    "to_claude_tool",
    "to_gemini_tool",
    "to_mcp_tool",
    "to_ollama_prompt",
    "to_openai_tool",
    "tool_name",
]

__version__ = "0.1.0"
