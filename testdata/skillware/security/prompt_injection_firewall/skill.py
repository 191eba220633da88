"""Fixture: YAML-driven prompt injection screening."""

import os
import sys

from skillware.core.base_skill import BaseSkill

sys.path.insert(0, os.path.dirname(__file__))
import firewall_rules  # noqa: E402  (sibling module, found through sys.path)

KB_DIR = os.path.join(os.path.dirname(__file__), "kb")


class PromptInjectionFirewallSkill(BaseSkill):
    def __init__(self, config=None):
        super().__init__(config)
        self.rules = firewall_rules.load_rules(KB_DIR)

    @property
    def manifest(self):
        return {"name": "prompt_injection_firewall", "version": "1.1.0"}

    def execute(self, params):
        text = params.get("text", "")
        threshold = float(params.get("threshold", 0.5))
        matches = firewall_rules.match(self.rules, text)
        score = firewall_rules.score(matches)
        if score >= threshold:
            verdict = "block"
        elif matches:
            verdict = "review"
        else:
            verdict = "allow"
        return {"verdict": verdict, "score": score, "matches": matches}
