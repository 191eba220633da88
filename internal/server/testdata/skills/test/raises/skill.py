from skillware.core.base_skill import BaseSkill


class Raises(BaseSkill):
    @property
    def manifest(self):
        return {}

    def execute(self, params):
        raise ValueError("bad wallet address")
