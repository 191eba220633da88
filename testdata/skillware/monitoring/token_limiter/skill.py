"""Fixture: token budget check using a sibling package module, a data file and
a sibling file loaded by path."""

import importlib.util
import os

from skillware.core.base_skill import BaseSkill

from . import budget

_spec = importlib.util.spec_from_file_location(
    "token_limiter_tokenizer", os.path.join(os.path.dirname(__file__), "tokenizer.py")
)
tokenizer = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tokenizer)


class TokenLimiterSkill(BaseSkill):
    @property
    def manifest(self):
        return {"name": "token_limiter", "version": "0.3.1"}

    def execute(self, params):
        text = params.get("text", "")
        reserve = int(params.get("reserve", 0))
        family, limit = budget.for_model(budget.load(), params.get("model", ""))
        allowed = max(limit - reserve, 0)
        used = tokenizer.estimate(text)
        result = {
            "model": family,
            "tokens": used,
            "budget": limit,
            "remaining": allowed - used,
            "within_budget": used <= allowed,
        }
        if used > allowed:
            kept, total = [], 0
            for p in tokenizer.pieces(text):
                if total + tokenizer.cost(p) > allowed:
                    break
                kept.append(p)
                total += tokenizer.cost(p)
            result["truncated"] = " ".join(kept)
        return result
