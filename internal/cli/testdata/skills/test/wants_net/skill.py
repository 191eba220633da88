from skillware.core.base_skill import BaseSkill

class Net(BaseSkill):
    @property
    def manifest(self):
        return {}

    def execute(self, params):
        return {}
