from skillware.core.base_skill import BaseSkill


class Big(BaseSkill):
    @property
    def manifest(self):
        return {"name": "big"}

    def execute(self, params):
        return "x" * int(params.get("n", 0))
