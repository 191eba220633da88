from skillware.core.base_skill import BaseSkill


class HelloSkill(BaseSkill):
    @property
    def manifest(self):
        return {"name": "hello"}

    def execute(self, params):
        return {"hello": "world"}
