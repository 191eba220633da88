from skillware.core.base_skill import BaseSkill


class Echo(BaseSkill):
    @property
    def manifest(self):
        return {"name": "echo"}

    def execute(self, params):
        return params
