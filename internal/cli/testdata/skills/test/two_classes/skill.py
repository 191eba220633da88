from skillware.core.base_skill import BaseSkill

class One(BaseSkill):
    def execute(self, params):
        return 1

class Two(BaseSkill):
    def execute(self, params):
        return 2
