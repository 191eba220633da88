import time

from skillware.core.base_skill import BaseSkill


class SleeperSkill(BaseSkill):
    @property
    def manifest(self):
        return {"name": "sleeper"}

    def execute(self, params):
        time.sleep(float(params.get("seconds", 60)))
        return {"slept": params.get("seconds", 60)}
