from skillware.core.base_skill import BaseSkill

print("reading settings")
raise RuntimeError("no settings")


class LoadFail(BaseSkill):
    def execute(self, params):
        return {}
