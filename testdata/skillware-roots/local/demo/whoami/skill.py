"""Fixture: says which copy of the skill ran (roots resolution)."""

from skillware.core.base_skill import BaseSkill

COPY = "project"


class WhichCopy(BaseSkill):
    @property
    def manifest(self):
        return {}

    def execute(self, params):
        return {"copy": COPY, "greeting": "hello, " + params["who"]}
