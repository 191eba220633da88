import time
from skillware.core.base_skill import BaseSkill

class Sleeper(BaseSkill):
    @property
    def manifest(self):
        return {}

    def execute(self, params):
        time.sleep(60)
        return {}
