import os
from skillware.core.base_skill import BaseSkill

class Exits(BaseSkill):
    @property
    def manifest(self):
        return {}

    def execute(self, params):
        os._exit(3)
