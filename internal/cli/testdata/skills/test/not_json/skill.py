from skillware.core.base_skill import BaseSkill

class NotJSON(BaseSkill):
    @property
    def manifest(self):
        return {}

    def execute(self, params):
        return {"tags": {1, 2}}
