from skillware.core.base_skill import BaseSkill


class Shape(BaseSkill):
    @property
    def manifest(self):
        return {}

    def execute(self, params):
        return {"n": params["n"]}
