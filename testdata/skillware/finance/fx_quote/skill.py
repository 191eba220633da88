"""Fixture: credentials read in __init__ with credential(), load_env_file()
at import, and both execute() and aexecute() defined."""

import json
import os

from skillware.core.base_skill import BaseSkill
from skillware.core.env import load_env_file

load_env_file()

_RATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "rates.json")


class FxQuoteSkill(BaseSkill):
    def __init__(self, config=None):
        super().__init__(config)
        self.api_key = self.credential("FX_API_KEY")
        self.tier = (self.credential("FX_TIER") or "free").lower()

    @property
    def manifest(self):
        return {"name": "fx_quote", "version": "0.1.0"}

    def execute(self, params):
        if not self.api_key:
            return {
                "status": "missing_credentials",
                "agent_hint": "Ask the operator to grant FX_API_KEY.",
                "runner": "execute",
            }
        with open(_RATES, encoding="utf-8") as f:
            usd = json.load(f)["per_usd"]
        src, dst = params["from"], params["to"]
        if src not in usd or dst not in usd:
            return {"status": "unknown_currency", "known": sorted(usd), "runner": "execute"}
        digits = 6 if self.tier == "premium" else 2
        rate = usd[dst] / usd[src]
        return {
            "status": "ok",
            "amount": round(params["amount"] * rate, digits),
            "rate": round(rate, 6),
            "tier": self.tier,
            "runner": "execute",
        }

    async def aexecute(self, params):
        # What an async host would await; Skillware's loaders call execute().
        result = self.execute(params)
        result["runner"] = "aexecute"
        return result
