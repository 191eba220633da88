from skillware.core.base_skill import BaseSkill

class Big(BaseSkill):
    @property
    def manifest(self):
        return {}

    def execute(self, params):
        return {"blob": "x" * 100000}
