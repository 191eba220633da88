"""greeting: greets someone in a style chosen by the GREETING_STYLE variable."""

import os

from skillware.core.base_skill import BaseSkill

TEMPLATES = {
    "formal": "Good day, {name}.",
    "casual": "Hi {name}!",
    "pirate": "Ahoy, {name}!",
}
DEFAULT_STYLE = "casual"


class GreetingSkill(BaseSkill):
    @property
    def manifest(self):
        return {
            "name": "greeting",
            "version": "1.0.0",
            "description": "Greets someone in a configurable style.",
            "env_vars": {"GREETING_STYLE": {"required": False}},
        }

    def _style(self):
        # Skillware's BaseSkill.credential() checks self.config, then the
        # environment; older BaseSkill versions lack it, so fall back.
        source = "default"
        value = None
        if hasattr(self, "credential"):
            value = self.credential("GREETING_STYLE")
            if value is not None:
                source = "config" if (getattr(self, "config", None) or {}).get("GREETING_STYLE") else "environment"
        if value is None:
            value = os.environ.get("GREETING_STYLE") or None
            if value is not None:
                source = "environment"
        style = (value or DEFAULT_STYLE).strip().lower()
        if style not in TEMPLATES:
            style, source = DEFAULT_STYLE, "default"
        return style, source

    def execute(self, params):
        name = str(params.get("name", "")).strip() or "there"
        times = int(params.get("times", 1))
        style, source = self._style()
        line = TEMPLATES[style].format(name=name)
        return {
            "greeting": " ".join([line] * times),
            "style": style,
            "style_source": source,
        }
